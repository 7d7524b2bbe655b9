"""Prefect flows over DVC: stage order from DVC's graph, the ephemeral run, and a real Prefect
server with a process work pool and worker running the scheduled deployment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, TINY_PIPELINE, copy_project, set_params
from tests.test_tracking import free_port

pytestmark = pytest.mark.slow

STAGES = ["download", "downsample", "pretrain", "finetune", "train_vae", "train_gan", "evaluator",
          "evaluate", "render"]


def test_stage_order_follows_dvc_dependencies():
    from pipelines.flow import stage_order

    order = stage_order(ROOT)
    assert sorted(order) == sorted(STAGES)
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    producer = {}
    for name, stage in spec.items():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            producer[next(iter(out)) if isinstance(out, dict) else out] = name
    for name, stage in spec.items():
        for dep in stage.get("deps", []):
            for path, maker in producer.items():
                if maker != name and (path == dep or path.startswith(f"{dep}/")):
                    assert order.index(maker) < order.index(name), (maker, name)


def test_bad_overrides_fail_before_any_stage(tmp_path):
    project = copy_project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipelines.flow", "-S", "pretrain.codings=-3"],
                          cwd=project, capture_output=True, text=True, env=_env(project))
    assert proc.returncode != 0
    assert "pretrain.codings: Input should be greater than or equal to 1" in proc.stderr + proc.stdout
    assert not (project / "data/raw").exists()


def _env(project: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(project), **extra,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_ephemeral_flow_runs_the_pipeline_with_overrides(tmp_path):
    project = copy_project(tmp_path)
    set_params(project, **TINY_PIPELINE)
    env = _env(project, PREFECT_HOME=str(tmp_path / "prefect"), LATENTLAB_TRACKING="0")
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-m", "pipelines.flow", "-S", "train_gan.epochs=1"],
                          cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Completed" in proc.stdout + proc.stderr
    assert yaml.safe_load((project / "params.yaml").read_text())["train_gan"]["epochs"] == 1
    assert (project / "reports/index.html").is_file()
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=project,
                            capture_output=True, text=True, env=env)
    assert "up to date" in status.stdout  # dvc.lock records what the flow ran


class PrefectServer:
    def __init__(self, home: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": self.url,
                    "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    def __enter__(self) -> PrefectServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)], env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(1)
        raise RuntimeError("prefect server did not start")

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=60)


def test_scheduled_deployment_runs_on_a_worker_against_a_real_server(tmp_path):
    project = copy_project(tmp_path)
    set_params(project, **TINY_PIPELINE)
    with PrefectServer(tmp_path / "prefect") as server:
        env = _env(project, **{k: v for k, v in server.env.items() if k.startswith("PREFECT_")})
        prefect = [sys.executable, "-m", "prefect"]
        subprocess.run([*prefect, "work-pool", "create", "test-pool", "--type", "process"],
                       cwd=project, env=env, check=True, capture_output=True)
        deployed = subprocess.run(
            [sys.executable, "-c", "from pipelines.deploy import deploy; from pathlib import Path; "
             f"print(deploy('test-pool', project=Path({str(project)!r})))"],
            cwd=project, env=env, capture_output=True, text=True)
        assert deployed.returncode == 0, deployed.stderr[-3000:]
        worker = subprocess.Popen([*prefect, "worker", "start", "--pool", "test-pool"], cwd=project,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            script = (
                "from prefect.deployments import run_deployment\n"
                "run = run_deployment('latentlab-pipeline/nightly', timeout=900)\n"
                "print(run.state.type.value)\n"
                "from prefect import get_client\n"
                "import asyncio\n"
                "async def sched():\n"
                "    async with get_client() as c:\n"
                "        d = await c.read_deployment_by_name('latentlab-pipeline/nightly')\n"
                "        return [s.schedule.cron for s in d.schedules]\n"
                "print(asyncio.run(sched()))\n")
            run = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                                 capture_output=True, text=True, timeout=1000)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        assert run.returncode == 0, run.stderr[-3000:]
        state, schedules = run.stdout.strip().splitlines()[-2:]
        assert state == "COMPLETED", run.stdout[-2000:]
        assert "0 2 * * *" in schedules
    assert (project / "reports/index.html").is_file()
    assert (project / "dvc.lock").is_file()
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("latentlab")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    stages = {r.data.tags.get("latentlab.stage") for r in runs}
    assert set(STAGES) <= stages
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs if r.data.tags.get("latentlab.stage")}
    assert len(parents) == 1  # one flow run, one parent run


def test_sweep_runs_a_grid_as_dvc_experiments_and_compares_them(tmp_path):
    project = copy_project(tmp_path)
    set_params(project, **TINY_PIPELINE)
    env = _env(project, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    script = ("import json; from pipelines.flow import sweep; "
              "rows = sweep({'train_gan.label_smoothing': [0.0, 0.2]}); print(json.dumps(rows))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for r in json.loads(proc.stdout.strip().splitlines()[-1])
            if r["stage"] == "train_gan"]
    assert sorted(float(r["train_gan.label_smoothing"]) for r in rows) == [0.0, 0.2]
    assert all("final_d_loss" in r for r in rows)
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--csv"], cwd=project,
                           capture_output=True, text=True, env=env).stdout
    assert shown.count("\n") >= 3  # the workspace, its baseline and the two experiments
