"""The Prefect flows on Dask: one worker (stages one at a time) vs two, on tiny params.

- pipeline: the whole tiny pipeline from a fresh copy of the project, `python -m pipelines.flow
  --workers N`, with each stage's start and end (the flow's timeline);
- sweep: a 4-point grid (`train_vae.images_seen` × `evaluate.k`) on an already built tiny project,
  `--sweep ... --workers N`, each point a `dvc exp run --temp` with its MLflow runs under one
  sweep run.

Each run starts from its own copy. Tracking is off for the pipeline; the sweeps log into a real
MLflow server on a throwaway PostgreSQL cluster (Debian's `initdb`/`pg_ctl`, loopback), and what
it holds afterwards is counted: sweep runs, point runs under them, stage runs under those, and
registered model versions.

    uv run python -m benchmarks.scale_out [--workers 1 2] [--parts pipeline sweep]

Writes benchmarks/results/scale_out.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from tests.support.project import TINY_PIPELINE, copy_project, set_params
from tests.support.servers import MlflowServer, Postgres

GRID = ["train_vae.images_seen=4317,5756", "evaluate.k=2,4"]  # 3 or 4 passes over digits


def environment(project: Path, where: Path, tracking: str | None) -> dict:
    env = {**os.environ, "LATENTLAB_TRACKING": "1" if tracking else "0",
           "PYTHONPATH": str(project), "PREFECT_HOME": str(where / "prefect"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    return env


def mlflow_counts(client) -> dict:
    runs = client.search_runs([client.get_experiment_by_name("latentlab").experiment_id],
                              max_results=5000)
    kind = {r.info.run_id: r.data.tags.get("latentlab.kind", "stage") for r in runs}
    parent = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in runs}
    sweeps = {run for run, k in kind.items() if k == "sweep"}
    points = {run for run, k in kind.items() if k == "pipeline" and parent[run] in sweeps}
    stages = [r for r in runs if parent[r.info.run_id] in points]
    return {"sweep_runs": len(sweeps), "point_runs_under_the_sweep": len(points),
            "stage_runs_under_the_points": len(stages),
            "train_vae_runs": sum(r.data.tags.get("latentlab.stage") == "train_vae" for r in stages),
            "metrics_logged": sum(len(r.data.metrics) for r in stages),
            "vae_decoder_versions": len(client.search_model_versions(
                "name='latentlab-vae-decoder'"))}


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return round(time.perf_counter() - start, 1)


def tiny(where: Path) -> Path:
    where.mkdir(parents=True)
    project = copy_project(where)
    set_params(project, **TINY_PIPELINE)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "commit", "-qam", "tiny params"], cwd=project, check=True)
    return project


def sweeps(tmp: Path, workers: list[int], flow: list[str], result: dict) -> None:
    built = tiny(tmp / "built")
    subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=built, check=True,
                   capture_output=True, env=environment(built, built.parent, tracking=None))
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                    "commit", "-qam", "built"], cwd=built, check=True)
    for n in workers:
        where = tmp / f"sweep-{n}"
        project = where / "project"
        shutil.copytree(built, project, symlinks=True)
        with Postgres() as db:
            server = MlflowServer(where / "mlflow", backend_store=db.uri).start()
            try:
                seconds = timed([*flow, "--workers", str(n), "--sweep", *GRID], project,
                                environment(project, where, tracking=server.url))
                counts = mlflow_counts(server.client())
            finally:
                server.stop()
        shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--csv"],
                               cwd=project, capture_output=True, text=True,
                               env=environment(project, where, tracking=None)).stdout
        result[f"workers_{n}"] = {
            "seconds": seconds, "mlflow_on_postgres": counts,
            "experiments": sum(1 for line in shown.splitlines()[1:] if line.split(",")[0])}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--parts", nargs="+", default=["pipeline", "sweep"],
                        choices=["pipeline", "sweep"], help="the others keep their last figures")
    args = parser.parse_args()
    result = Results(args, "scale_out", resume=True)
    result.update({part: {} for part in args.parts})
    flow = [sys.executable, "-m", "pipelines.flow"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.workers if "pipeline" in args.parts else []:
            where = Path(tmp) / f"pipeline-{n}"
            project = tiny(where)
            seconds = timed([*flow, "--workers", str(n), "--timeline-json", "timeline.json"],
                            project, environment(project, where, tracking=None))
            timeline = json.loads((project / "timeline.json").read_text())
            result["pipeline"][f"workers_{n}"] = {
                "seconds": seconds,
                "timeline": {r["stage"]: [r["start"], r["end"]] for r in timeline}}
        if "sweep" in args.parts:
            sweeps(Path(tmp), args.workers, flow, result["sweep"])
    for part in args.parts:
        runs = result[part]
        if "workers_1" in runs and "workers_2" in runs:
            runs["speedup_2_workers"] = round(runs["workers_1"]["seconds"]
                                              / runs["workers_2"]["seconds"], 2)
    result.save()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
