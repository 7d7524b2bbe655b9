"""Prefect 3 flows over the DVC pipeline.

`pipeline` runs every DVC stage as one task, each task calling `dvc repro --single-item <stage>`
so that `dvc.lock` and the cache stay the source of truth. Tasks go to a Dask task runner as soon
as the stages they depend on (DVC's own graph) are done, so independent branches (the
autoencoder, the VAE, the GAN, the evaluator) run at the same time.
`sweep` runs a grid's combinations or a sweep profile's points (params overrides) as DVC
experiments, in parallel, each in its own temporary workspace, and returns the MLflow comparison.

    python -m pipelines.flow                                   # ephemeral Prefect, whole pipeline
    python -m pipelines.flow -S train_gan.images_seen=300000    # with overrides
    python -m pipelines.flow --workers 1                       # one stage at a time
    python -m pipelines.flow train@gan                         # a stage and those it needs
    python -m pipelines.flow --dask-address tcp://scheduler:8786   # an existing Dask cluster
    python -m pipelines.flow --sweep train_gan.replay=true,false train_gan.minibatch=none,stddev
    python -m pipelines.flow --profile gan_modes               # a profile: one run, or its sweep
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Before Prefect reads its settings. Analytics off: the ephemeral server's telemetry service
# phones home and, on a busy machine, its read-then-write of TELEMETRY_SESSION loses SQLite's
# lock race against the flow's own writes ("database is locked"). A longer statement timeout
# lets the ephemeral server's SQLite wait out a loaded machine, and the temporary server itself
# gets minutes, not Prefect's 20 s, to start (a flow on a busy 2-core machine died at 20 s). All
# can still be overridden.
STARTUP_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
os.environ.setdefault(STARTUP_TIMEOUT, "300")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.futures import as_completed, wait  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.tasks import exponential_backoff  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from latentlab.errors import UserError  # noqa: E402
from latentlab.params import (  # noqa: E402
    key_value,
    parse_params,
    parse_value,
    read_yaml,
    set_dotted,
    settings,
)
from latentlab.stage_runner import EXIT_USER_ERROR  # noqa: E402
from latentlab.tracking import close_parent, open_parent  # noqa: E402

TRANSIENT_STAGES = {"download"}  # network fetches: worth retrying
WORKSPACE_LOCK = Path(".dvc/tmp/latentlab-pipeline.lock")
_held: dict[Path, Any] = {}  # workspaces whose lock this process holds


@contextlib.contextmanager
def workspace_lock(project: Path):
    """One pipeline at a time in a workspace: a second one (another flow, a deployment's run)
    stops at once with a UserError naming the first, instead of failing mid-way on DVC's busy
    outputs. The lock is the OS's (flock): it goes with the process that held it, even when that
    one is killed, so no stale lock is ever left to remove by hand. Reentrant in one process."""
    root = project.resolve()
    if root in _held:
        yield
        return
    path = root / WORKSPACE_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"a pipeline is already running in {root} ({holder}); wait for it to "
                        "end, or run this one in another clone (or as `dvc exp run --temp`)"
                        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _held[root] = handle
    try:
        yield
    finally:
        del _held[root]
        handle.close()  # releases the lock


class StageFailed(RuntimeError):
    def __init__(self, stage: str, code: int, output: str):
        super().__init__(f"stage {stage} failed with exit status {code}:\n{output[-4000:]}")
        self.code = code


def stage_graph(project: Path) -> dict[str, list[str]]:
    """Every DVC stage of the project's dvc.yaml, in dependency order, with the stages it depends
    on (DVC's own graph)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return {stage.name: sorted(s.name for s in graph.successors(stage))
                for stage in reversed(list(nx.topological_sort(graph)))}


def stage_order(project: Path) -> list[str]:
    """The DVC stages in dependency order, as DVC's graph gives them."""
    return list(stage_graph(project))


def needed_by(graph: dict[str, list[str]], targets: list[str]) -> dict[str, list[str]]:
    """``graph`` cut down to ``targets`` and every stage they depend on, as `dvc repro
    <targets>` runs them; a name that is no stage is a `UserError`."""
    unknown = [t for t in targets if t not in graph]
    if unknown:
        raise UserError(f"no stage named {', '.join(unknown)} in dvc.yaml; the stages are "
                        f"{', '.join(graph)}")
    needed, todo = set(), list(targets)
    while todo:
        stage = todo.pop()
        if stage not in needed:
            needed.add(stage)
            todo += graph[stage]
    return {stage: upstream for stage, upstream in graph.items() if stage in needed}


def task_runner(workers: int | None = None, address: str | None = None) -> DaskTaskRunner:
    """Dask: the cluster at ``address`` (or $LATENTLAB_DASK_ADDRESS), else a LocalCluster of
    ``workers`` (or $LATENTLAB_DASK_WORKERS, default 2) single-threaded in-process workers. A
    task only starts a DVC command and waits for it, so a local worker is a thread of the flow's
    process (no second import of the flow's code) and runs one stage at a time. Its dashboard and
    the workers' HTTP ports listen on loopback only (the dashboard lists logs and call stacks):
    $LATENTLAB_DASK_DASHBOARD (default 127.0.0.1:8787) serves it elsewhere."""
    address = address or os.environ.get("LATENTLAB_DASK_ADDRESS") or None
    if address:
        return DaskTaskRunner(address=address)
    workers = workers or int(os.environ.get("LATENTLAB_DASK_WORKERS", "2"))
    logging.getLogger("distributed").setLevel(logging.WARNING)  # in-process: no startup chatter
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers, "threads_per_worker": 1, "processes": False,
        # None would mean Dask's defaults: every interface
        "dashboard_address": os.environ.get("LATENTLAB_DASK_DASHBOARD", "127.0.0.1:8787"),
        "worker_dashboard_address": "127.0.0.1:0",
        "silence_logs": logging.ERROR})


def _dvc(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, **(env or {}), "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    # --wait-for-lock: DVC holds its repository lock except while a stage's command runs, so a
    # stage that starts while another one saves its outputs waits for it instead of failing with
    # "Unable to acquire lock" (treeverse/dvc#10465)
    return subprocess.run([sys.executable, "-m", "dvc", "--wait-for-lock", *args], cwd=project,
                          env=env, capture_output=True, text=True)


def _not_a_user_error(task, task_run, state) -> bool:
    """Retry only what may pass next time: not bad params or bad data (exit status 2)."""
    try:
        state.result()
    except StageFailed as exc:
        return exc.code != EXIT_USER_ERROR
    except Exception:  # noqa: BLE001
        return True
    return False


@task(task_run_name="{stage}")
def run_stage(stage: str, project: str, pipeline_id: str) -> dict:
    """One stage; returns when it ran (wall-clock seconds) and whether DVC reran it."""
    start = time.time()
    proc = _dvc(Path(project), "repro", "--single-item", stage,
                env={"LATENTLAB_PIPELINE_ID": pipeline_id})
    end = time.time()
    out = proc.stdout if len(proc.stdout) <= 3000 else f"{proc.stdout[:1000]}\n…\n{proc.stdout[-2000:]}"
    get_run_logger().info("%s\n%s", stage, out)
    if proc.returncode != 0:
        raise StageFailed(stage, proc.returncode, proc.stdout + proc.stderr)
    return {"stage": stage, "start": start, "end": end,
            "ran": f"Running stage '{stage}'" in proc.stdout, "worker": socket.gethostname(),
            "pid": os.getpid()}


run_transient_stage = run_stage.with_options(
    retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=_not_a_user_error)


def with_overrides(project: Path, overrides: dict[str, Any]) -> dict:
    """params.yaml (read as DVC reads it) with ``overrides`` (dotted keys) applied, validated:
    bad ones fail here."""
    path = project / "params.yaml"
    params = set_dotted(read_yaml(path.read_text(), str(path)), overrides)
    parse_params(params, origin=f"params.yaml with overrides {overrides}")
    return params


def apply_overrides(project: Path, overrides: dict[str, Any]) -> None:
    """Write ``overrides`` into params.yaml the way `dvc exp run -S` does: comments and order kept."""
    from ruamel.yaml import YAML

    with_overrides(project, overrides)
    path = project / "params.yaml"
    document = YAML()  # round trip
    params = set_dotted(document.load(path.read_text()), overrides)
    with open(path, "w") as f:
        document.dump(params, f)


@flow(name="latentlab-pipeline", log_prints=True, task_runner=task_runner())
def pipeline(overrides: dict[str, Any] | None = None, project: str = ".",
             targets: list[str] | None = None) -> dict:
    """Every DVC stage (or ``targets`` and the stages they need), each submitted once the stages
    it depends on are done; returns the final metrics of the run and its timeline (one row per
    stage: start and end, seconds from the first start, and whether DVC reran it)."""
    root = Path(project).resolve()
    with workspace_lock(root):
        return _pipeline(root, overrides, targets)


def _pipeline(root: Path, overrides: dict[str, Any] | None, targets: list[str] | None) -> dict:
    if overrides:
        apply_overrides(root, overrides)
    pipeline_id = f"prefect-{flow_run.get_id() or os.getpid()}"
    with contextlib.chdir(root):  # MLflow's default store is the project's mlflow.db
        parent = open_parent(pipeline_id)  # before stages that may start at the same time
    failed = True  # the MLflow parent run ends with the last stage, FAILED if one failed
    try:
        graph = stage_graph(root)
        rows = run_graph(needed_by(graph, targets) if targets else graph, root, pipeline_id)
        failed = False
    finally:
        with contextlib.chdir(root):
            close_parent(parent, failed)
    origin = min(row["start"] for row in rows)
    timeline = [{**row, "start": round(row["start"] - origin, 2),
                 "end": round(row["end"] - origin, 2)} for row in rows]
    create_markdown_artifact(timeline_markdown(timeline), key="pipeline-timeline")
    metrics = _dvc(root, "metrics", "show", "--json")
    return {"metrics": json.loads(metrics.stdout) if metrics.returncode == 0 else {},
            "timeline": timeline}


def run_graph(graph: dict[str, list[str]], root: Path, pipeline_id: str) -> list[dict]:
    """Submit each stage once every stage it depends on is done (a task with no dependencies
    goes to whichever worker is free); returns the stages' rows in ``graph``'s order. After a
    failure nothing new starts, the running stages finish, and the first failure is raised."""
    pending, running, rows, failure = dict(graph), {}, {}, None
    while pending or running:
        for stage, upstream in list(pending.items()):
            if failure is None and all(u in rows for u in upstream):
                del pending[stage]
                runner = run_transient_stage if stage in TRANSIENT_STAGES else run_stage
                running[runner.submit(stage, str(root), pipeline_id)] = stage
        if not running:
            break
        future = next(as_completed(list(running)))
        stage = running.pop(future)
        try:
            rows[stage] = future.result()
        except Exception as exc:  # noqa: BLE001 - re-raised below, once the others are done
            failure = failure or exc
    if failure is not None:
        raise failure
    return [rows[stage] for stage in graph]


def timeline_markdown(timeline: list[dict]) -> str:
    """The stages as a table with a bar per stage (one character per 2 % of the run)."""
    total = max(row["end"] for row in timeline) or 1.0
    lines = ["| stage | start s | end s | ran | timeline |", "|---|---|---|---|---|"]
    for row in timeline:
        lead, width = int(50 * row["start"] / total), max(1, int(50 * (row["end"] - row["start"]) / total))
        bar = "·" * lead + "█" * width
        lines.append(f"| {row['stage']} | {row['start']:.1f} | {row['end']:.1f} | "
                     f"{'yes' if row['ran'] else 'no'} | `{bar}` |")
    return "\n".join(lines)


def grid_runs(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


@task(task_run_name="point {index}")
def run_point(index: int, overrides: dict[str, Any], project: str, point_id: str,
              tracking_uri: str) -> dict:
    """One grid point as a DVC experiment in its own temporary workspace (`dvc exp run --temp`):
    points run at the same time without touching the project's workspace or each other."""
    args = [arg for k, v in overrides.items() for arg in ("-S", f"{k}={json.dumps(v)}")]
    start = time.time()
    proc = _dvc(Path(project), "exp", "run", "--temp", *args,
                env={"LATENTLAB_PIPELINE_ID": point_id, "MLFLOW_TRACKING_URI": tracking_uri})
    if proc.returncode != 0:
        raise StageFailed(f"experiment {overrides}", proc.returncode, proc.stdout + proc.stderr)
    return {"index": index, "overrides": overrides, "start": start, "end": time.time(),
            "pid": os.getpid()}


@flow(name="latentlab-sweep", log_prints=True, task_runner=task_runner())
def sweep(points: list[dict[str, Any]], name: str, project: str = ".") -> list[dict]:
    """Each of ``points`` (the overrides of one run each: a grid's combinations, or a sweep
    profile's points) as a DVC experiment, as many at once as the task runner has workers; then
    the MLflow comparison table. MLflow gets one sweep run, named ``sweep <name>``, with each
    point's pipeline run under it and the point's stage runs under that."""
    from latentlab.compare import compare

    root = Path(project).resolve()
    if not points:
        raise UserError("a sweep of no points: give at least one")
    for overrides in points:  # every point is checked before any runs
        with_overrides(root, overrides)
    sweep_id = f"prefect-{flow_run.get_id() or os.getpid()}"
    # the temporary workspaces are not the project: they log where the project logs
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    with contextlib.chdir(root), _environ(MLFLOW_TRACKING_URI=tracking_uri):
        parent = open_parent(sweep_id, kind="sweep", name=f"sweep {name}")
        point_runs = [open_parent(f"{sweep_id}-{i}", parent=parent) for i in range(len(points))]
    futures = [run_point.submit(i, overrides, str(root), f"{sweep_id}-{i}", tracking_uri)
               for i, overrides in enumerate(points)]
    wait(futures)  # every point finishes (or fails) before the first failure is raised
    failed = [future.state.is_failed() for future in futures]
    with contextlib.chdir(root), _environ(MLFLOW_TRACKING_URI=tracking_uri):
        for run_id, point_failed in zip(point_runs, failed):
            close_parent(run_id, point_failed)
        close_parent(parent, any(failed))
    finished = [future.result() for future in futures]
    with contextlib.chdir(root), _environ(MLFLOW_TRACKING_URI=tracking_uri):
        tables = compare(last=len(points))
    markdown = comparison_markdown(tables)
    create_markdown_artifact(markdown or "no runs", key="sweep-comparison")
    origin = min(p["start"] for p in finished)
    print("\n".join(f"point {p['index']} {p['overrides']}: {p['start'] - origin:.1f} s to "
                    f"{p['end'] - origin:.1f} s" for p in finished))
    return [{"stage": stage, **row} for stage, table in tables.items()
            for row in table.to_dict(orient="records")]


def comparison_markdown(tables: dict) -> str:
    """The MLflow comparison (one table per stage) as markdown."""
    return "\n\n".join(f"## {stage}\n\n{table.to_markdown(index=False)}"
                       for stage, table in tables.items())


@contextlib.contextmanager
def _environ(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the latentlab pipeline as a Prefect flow.")
    parser.add_argument("targets", nargs="*", metavar="STAGE",
                        help="run these stages and those they depend on (default: every stage)")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2", help="a grid of overrides")
    parser.add_argument("--profile", metavar="NAME",
                        help="profiles/NAME.yaml under the overrides: one run, or its sweep's "
                             "points as a sweep")
    parser.add_argument("--workers", type=int, default=None,
                        help="Dask workers of the local cluster (default 2, or $LATENTLAB_DASK_WORKERS)")
    parser.add_argument("--dask-address", default=None, metavar="tcp://HOST:PORT",
                        help="an existing Dask scheduler (or $LATENTLAB_DASK_ADDRESS)")
    parser.add_argument("--timeline-json", type=Path, default=None, metavar="PATH",
                        help="also write the run's stage timeline here")
    args = parser.parse_args()
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.sweep and args.targets:
        parser.error("a --sweep runs whole experiments; name no stages with it")
    if args.sweep and args.profile:
        parser.error("--sweep and --profile: give one (a sweep profile holds its own points)")
    points, name = None, ""  # a sweep's runs (their overrides), and its name in MLflow
    try:  # bad overrides: the params message alone and exit status 2, before any flow starts
        profile = {}
        if args.profile:
            from latentlab.cli import read_profile

            profile, points = read_profile(args.profile)
            name = f"profile {args.profile}"
            if points is not None and args.targets:
                raise UserError(f"profile {args.profile!r} is a sweep: it runs whole "
                                "experiments; name no stages with it")
        overrides = {**profile, **settings(args.set, "-S")}
        if args.sweep:
            grid = {}
            for key, values in (key_value(item, "--sweep", "V1,V2") for item in args.sweep):
                if not values.strip():
                    raise UserError(f"--sweep {key}=: an empty list of values; "
                                    f"write {key}=V1,V2")
                grid[key] = [parse_value(v, key) for v in values.split(",")]
            points = grid_runs(grid)
            name = " ".join(f"{k}={','.join(map(str, v))}" for k, v in grid.items())
        if points is not None:  # each point's own keys over the profile's and the -S ones
            points = [{**overrides, **point} for point in points]
            for point in points:
                with_overrides(Path("."), point)
        else:
            with_overrides(Path("."), overrides)
            if args.targets:
                needed_by(stage_graph(Path(".")), args.targets)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    runner = task_runner(args.workers, args.dask_address)
    try:
        if points is not None:
            import pandas as pd

            rows = sweep.with_options(task_runner=runner)(points=points, name=name)
            tables = {stage: table.drop(columns="stage").dropna(axis=1, how="all")
                      for stage, table in pd.DataFrame(rows).groupby("stage", sort=False)}
            print(comparison_markdown(tables) or "no runs")
        else:
            with workspace_lock(Path(".")):  # before Prefect starts: a second flow stops at once
                result = pipeline.with_options(task_runner=runner)(overrides,
                                                                   targets=args.targets)
            print(timeline_markdown(result["timeline"]))
            if args.timeline_json:
                args.timeline_json.write_text(json.dumps(result["timeline"], indent=2) + "\n")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        print(f"error: {no_server(str(exc))}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def no_server(message: str) -> str:
    """One line for Prefect's temporary server not starting (Prefect's own message carries the
    server's whole output)."""
    exited = re.search(r"exited with code (-?\d+)", message)
    why = (f"its process exited with code {exited.group(1)}" if exited else
           f"it did not answer within {os.environ[STARTUP_TIMEOUT]} s")
    return (f"Prefect's temporary API server did not start ({why}); on a busy machine raise "
            f"{STARTUP_TIMEOUT}, or start a server (`prefect server start`) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api")


if __name__ == "__main__":
    main()
