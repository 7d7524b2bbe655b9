"""MLflow tracking against a real `mlflow server` on loopback: the pipeline's runs, and an outage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import TINY_PIPELINE, copy_project, dvc, set_params

pytestmark = pytest.mark.slow

STAGES = {"download", "downsample", "pretrain", "finetune", "train_vae", "train_gan", "evaluator",
          "evaluate", "render"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, root: Path, port: int | None = None):
        self.root, self.port = root, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    srv = MlflowServer(tmp_path / "mlflow").start()
    yield srv
    srv.stop()


def client_for(url: str):
    import mlflow

    mlflow.set_tracking_uri(url)
    return mlflow.MlflowClient(url)


def tracked_project(tmp_path: Path, url: str) -> Path:
    project = copy_project(tmp_path)
    set_params(project, **TINY_PIPELINE)
    os.environ["MLFLOW_TRACKING_URI"] = url
    return project


@pytest.fixture(autouse=True)
def _restore_env():
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def runs_by_stage(client) -> dict:
    experiment = client.get_experiment_by_name("latentlab")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return {r.data.tags.get("latentlab.stage", r.data.tags.get("latentlab.kind")): r for r in runs}


def test_pipeline_runs_land_in_a_real_tracking_server(server, tmp_path):
    project = tracked_project(tmp_path, server.url)
    dvc(project, "repro", tracking=True)
    client = client_for(server.url)
    runs = runs_by_stage(client)
    assert STAGES <= set(runs)
    parent = runs["pipeline"]
    for stage in STAGES:
        run = runs[stage]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        for tag in ("git_revision", "params_hash", "keras_backend"):
            assert run.data.tags[f"latentlab.{tag}"]
    assert runs["pretrain"].data.tags["latentlab.data_hash"]
    assert runs["pretrain"].data.params["pretrain.codings"] == "8"
    history = client.get_metric_history(runs["pretrain"].info.run_id, "epoch.val_loss")
    assert [m.step for m in history] == [1, 2]
    gan_steps = client.get_metric_history(runs["train_gan"].info.run_id, "epoch.d_loss")
    assert [m.step for m in gan_steps] == [1, 2]
    assert "val_mse" in runs["pretrain"].data.metrics
    artifacts = {a.path for a in client.list_artifacts(runs["render"].info.run_id)}
    assert {"galleries", "index.html", "summary.md"} <= artifacts
    for name in ("latentlab-classifier", "latentlab-vae-decoder", "latentlab-gan-generator"):
        versions = client.search_model_versions(f"name='{name}'")
        assert len(versions) == 1 and versions[0].run_id == runs[
            {"latentlab-classifier": "finetune", "latentlab-vae-decoder": "train_vae",
             "latentlab-gan-generator": "train_gan"}[name]].info.run_id

    # A second execution is a second parent, and the models get a second version.
    dvc(project, "exp", "run", "-S", "train_gan.epochs=1", tracking=True)
    versions = client.search_model_versions("name='latentlab-gan-generator'")
    assert len(versions) == 2
    report = (project / "reports/index.html").read_text()
    assert "Earlier runs (MLflow)" in report and "train_gan: last 2 runs" in report
    compare = subprocess.run([sys.executable, "-m", "latentlab.compare", "--stage", "train_gan"],
                             cwd=project, capture_output=True, text=True, env=os.environ)
    assert compare.returncode == 0, compare.stderr
    assert "train_gan.epochs" in compare.stdout and "epochs_trained" in compare.stdout


def test_a_tracking_outage_mid_pipeline_loses_nothing(server, tmp_path):
    project = tracked_project(tmp_path, server.url)
    client = client_for(server.url)
    done = {}

    def repro():
        done["proc"] = dvc(project, "repro", check=False, tracking=True)

    worker = threading.Thread(target=repro)
    worker.start()
    deadline = time.time() + 600
    while time.time() < deadline and worker.is_alive():
        experiment = client.get_experiment_by_name("latentlab")
        if experiment and any(r.data.tags.get("latentlab.stage") == "pretrain"
                              for r in client.search_runs([experiment.experiment_id])):
            break
        time.sleep(1)
    server.stop()  # the server dies while the rest of the pipeline runs
    worker.join()
    proc = done["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MLflow unreachable" in proc.stderr
    assert (project / "reports/index.html").is_file()  # every output is written
    pending = sorted((project / "mlflow-pending").iterdir())
    assert {p.name.split("-")[2] for p in pending} >= {"train_vae", "train_gan", "render"}

    restarted = MlflowServer(server.root, server.port).start()
    try:
        sync = subprocess.run([sys.executable, "-m", "latentlab.tracking", "sync"], cwd=project,
                              capture_output=True, text=True, env=os.environ)
        assert sync.returncode == 0, sync.stderr
        assert not any((project / "mlflow-pending").iterdir())
        runs = runs_by_stage(client_for(restarted.url))
        assert STAGES <= set(runs)
        parents = {runs[s].data.tags["mlflow.parentRunId"] for s in STAGES}
        assert parents == {runs["pipeline"].info.run_id}  # synced runs join their pipeline
        assert client_for(restarted.url).search_model_versions("name='latentlab-gan-generator'")
    finally:
        restarted.stop()
