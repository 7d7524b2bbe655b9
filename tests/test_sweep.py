"""The parallel sweep: DVC experiments in temporary workspaces, logging at once into an MLflow
server on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from tests.support.servers import MlflowServer, Postgres, needs_postgres
from tests.test_flows import _env

pytestmark = pytest.mark.slow


@needs_postgres
def test_a_parallel_sweep_logs_every_point_into_mlflow_on_postgres(built_copy, tmp_path):
    # Two points at once (the flow's 2 local Dask workers), each rerunning render (the cheapest
    # stage) in its own temporary workspace, both logging into one MLflow server on PostgreSQL.
    # The points come from a sweep profile: -S goes over the profile's value, a point's own over
    # both.
    with Postgres() as db:
        server = MlflowServer(tmp_path / "mlflow", backend_store=db.uri).start()
        try:
            env = _env(built_copy, tmp_path, LATENTLAB_TRACKING="1", MLFLOW_TRACKING_URI=server.url)
            (built_copy / "profiles" / "maps.yaml").write_text(  # a sweep profile of two points
                "render: {map_points: 50}\nsweep:\n  - render.map_points: 40\n  - {}\n")
            proc = subprocess.run([sys.executable, "-m", "pipelines.flow", "--profile", "maps",
                                   "-S", "render.map_points=60"], cwd=built_copy,
                                  capture_output=True, text=True, env=env)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            client = server.client()
            runs = client.search_runs(
                [client.get_experiment_by_name("latentlab").experiment_id], max_results=1000)
        finally:
            server.stop()
    # the comparison table, printed: one row per point, the swept param in it
    lines = proc.stdout[proc.stdout.index("## render"):].split("\n\n")[1].splitlines()
    table = [[cell.strip() for cell in line.split("|")] for line in lines]
    column = table[0].index("render.map_points")
    assert sorted(int(row[column]) for row in table[2:]) == [40, 60]
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--csv"], cwd=built_copy,
                           capture_output=True, text=True, env=env).stdout
    experiments = [r for r in csv.DictReader(io.StringIO(shown)) if r["Experiment"]]
    assert sorted(int(r["render.map_points"]) for r in experiments) == [40, 60]
    # nothing lost: one sweep run; each point's pipeline run under it; each point's render run
    # under that, with the same params and metrics each
    kind = {r.info.run_id: r.data.tags.get("latentlab.kind", "stage") for r in runs}
    parent = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in runs}
    sweeps = [run for run, k in kind.items() if k == "sweep"]
    points = [run for run, k in kind.items() if k == "pipeline"]
    assert len(sweeps) == 1 and len(points) == 2
    assert {parent[point] for point in points} == set(sweeps)
    # each parent says what ran, and the flow closed them all
    named = {r.info.run_id: r for r in runs}
    assert named[sweeps[0]].info.run_name == "sweep profile maps"
    assert all(named[p].info.run_name.startswith("pipeline digits 8×8×1 ") for p in points)
    assert all(named[r].info.status == "FINISHED" for r in (*sweeps, *points))
    renders = [r for r in runs if r.data.tags.get("latentlab.stage") == "render"]
    assert sorted(parent[r.info.run_id] for r in renders) == sorted(points)
    assert sorted(int(r.data.params["render.map_points"]) for r in renders) == [40, 60]
    first, second = ((set(r.data.params), set(r.data.metrics)) for r in renders)
    assert first == second
    stages = {r.data.tags.get("latentlab.stage") for r in runs if kind[r.info.run_id] == "stage"}
    # only render reran in each point's workspace, not download (index's listing there matches)
    assert stages == {"render"}
