"""Prefect 3 flows over the DVC pipeline.

`pipeline` runs every DVC stage as one task, in the order DVC's own graph gives, each task calling
`dvc repro --single-item <stage>` so that `dvc.lock` and the cache stay the source of truth.
`sweep` runs a grid of params overrides as DVC experiments and returns the MLflow comparison.

    python -m pipelines.flow                                   # ephemeral Prefect, whole pipeline
    python -m pipelines.flow -S train_gan.epochs=5             # with overrides
    python -m pipelines.flow --sweep train_gan.replay=true,false train_gan.minibatch=none,stddev
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Before Prefect reads its settings. Analytics off: the ephemeral server's telemetry service
# phones home and, on a busy machine, its read-then-write of TELEMETRY_SESSION loses SQLite's
# lock race against the flow's own writes ("database is locked"). A longer statement timeout
# lets the ephemeral server's SQLite wait out a loaded machine. Both can still be overridden.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.tasks import exponential_backoff  # noqa: E402

from latentlab.errors import UserError  # noqa: E402
from latentlab.params import parse_params, read_yaml, set_dotted  # noqa: E402
from latentlab.stage_runner import EXIT_USER_ERROR  # noqa: E402

TRANSIENT_STAGES = {"download"}  # network fetches: worth retrying


class StageFailed(RuntimeError):
    def __init__(self, stage: str, code: int, output: str):
        super().__init__(f"stage {stage} failed with exit status {code}:\n{output[-4000:]}")
        self.code = code


def stage_order(project: Path) -> list[str]:
    """The DVC stages in dependency order, as DVC's graph gives them."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return [stage.addressing for stage in reversed(list(nx.topological_sort(graph)))]


def _dvc(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, **(env or {}), "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env,
                          capture_output=True, text=True)


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
def run_stage(stage: str, project: str, pipeline_id: str) -> str:
    proc = _dvc(Path(project), "repro", "--single-item", stage,
                env={"LATENTLAB_PIPELINE_ID": pipeline_id})
    out = proc.stdout if len(proc.stdout) <= 3000 else f"{proc.stdout[:1000]}\n…\n{proc.stdout[-2000:]}"
    get_run_logger().info("%s\n%s", stage, out)
    if proc.returncode != 0:
        raise StageFailed(stage, proc.returncode, proc.stdout + proc.stderr)
    return stage


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


def parse_value(text: str, key: str) -> Any:
    """One `-S key=value` value, as DVC parses it (YAML 1.2)."""
    return read_yaml(text, f"-S {key}={text}")


@flow(name="latentlab-pipeline", log_prints=True)
def pipeline(overrides: dict[str, Any] | None = None, project: str = ".") -> dict:
    """Every DVC stage, in DVC's order; returns the final metrics of the run."""
    root = Path(project).resolve()
    if overrides:
        apply_overrides(root, overrides)
    pipeline_id = f"prefect-{flow_run.get_id() or os.getpid()}"
    for stage in stage_order(root):
        runner = run_transient_stage if stage in TRANSIENT_STAGES else run_stage
        runner(stage, str(root), pipeline_id)
    metrics = _dvc(root, "metrics", "show", "--json")
    return json.loads(metrics.stdout) if metrics.returncode == 0 else {}


def grid_runs(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


@flow(name="latentlab-sweep", log_prints=True)
def sweep(grid: dict[str, list], project: str = ".") -> list[dict]:
    """Each combination of ``grid`` as a DVC experiment, then the MLflow comparison table."""
    from latentlab.compare import compare

    root = Path(project).resolve()
    runs = grid_runs(grid)
    for overrides in runs:  # every point is checked before any runs
        with_overrides(root, overrides)
    sweep_id = f"prefect-{flow_run.get_id() or os.getpid()}"
    for i, overrides in enumerate(runs):
        args = [arg for k, v in overrides.items() for arg in ("-S", f"{k}={json.dumps(v)}")]
        proc = _dvc(root, "exp", "run", *args, env={"LATENTLAB_PIPELINE_ID": f"{sweep_id}-{i}"})
        if proc.returncode != 0:
            raise StageFailed(f"experiment {overrides}", proc.returncode, proc.stdout + proc.stderr)
    tables = compare(last=len(runs))
    markdown = "\n\n".join(f"## {stage}\n\n{table.to_markdown(index=False)}"
                           for stage, table in tables.items())
    create_markdown_artifact(markdown or "no runs", key="sweep-comparison")
    return [{"stage": stage, **row} for stage, table in tables.items()
            for row in table.to_dict(orient="records")]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the latentlab pipeline as a Prefect flow.")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2", help="a grid of overrides")
    args = parser.parse_args()
    try:  # bad overrides: the params message alone and exit status 2, before any flow starts
        if args.sweep:
            grid = {k: [parse_value(v, k) for v in values.split(",")]
                    for k, values in (item.split("=", 1) for item in args.sweep)}
            for overrides in grid_runs(grid):
                with_overrides(Path("."), overrides)
        else:
            overrides = {k: parse_value(v, k) for k, v in (item.split("=", 1) for item in args.set)}
            with_overrides(Path("."), overrides)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if args.sweep:
        sweep(grid)
    else:
        pipeline(overrides)


if __name__ == "__main__":
    main()
