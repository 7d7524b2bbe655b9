"""MLflow tracking against a real `mlflow server` on loopback: the pipeline's runs, and an outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support.project import dvc, ran
from tests.support.servers import MlflowServer, free_port

pytestmark = pytest.mark.slow

STAGES = {"download", "downsample", "pretrain", "finetune", "train_vae", "train_gan", "evaluator",
          "evaluate", "render"}
REGISTERED = {"latentlab-classifier": "finetune", "latentlab-vae-decoder": "train_vae",
              "latentlab-gan-generator": "train_gan"}


def runs_of(client, parent_run_id: str | None = None) -> list:
    experiment = client.get_experiment_by_name("latentlab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    if parent_run_id is None:
        return runs
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_run_id]


def test_pipeline_runs_land_in_a_real_tracking_server(built):
    client = built.server.client()
    runs = {r.data.tags["latentlab.stage"]: r for r in runs_of(client, built.parent_run_id)}
    assert set(runs) == STAGES
    for stage in STAGES:
        run = runs[stage]
        assert run.info.status == "FINISHED"
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
    for name, stage in REGISTERED.items():
        versions = client.search_model_versions(f"name='{name}'")
        assert [v.run_id for v in versions].count(runs[stage].info.run_id) == 1


def test_a_second_execution_is_a_second_parent_with_new_model_versions(built, built_copy):
    client = built.server.client()
    before = len(client.search_model_versions("name='latentlab-gan-generator'"))
    dvc(built_copy, "exp", "run", "-S", "train_gan.images_seen=1439", tracking=built.server.url)
    versions = client.search_model_versions("name='latentlab-gan-generator'")
    assert len(versions) == before + 1
    newest = max(versions, key=lambda v: int(v.version))
    parent = client.get_run(newest.run_id).data.tags["mlflow.parentRunId"]
    assert parent != built.parent_run_id
    rerun = {r.data.tags["latentlab.stage"] for r in runs_of(client, parent)}
    assert rerun == {"train_gan", "evaluate", "render"}  # only what the change reran

    finished_gan_runs = [r for r in runs_of(client) if r.info.status == "FINISHED"
                         and r.data.tags.get("latentlab.stage") == "train_gan"]
    report = (built_copy / "reports/index.html").read_text()
    assert "Earlier runs (MLflow)" in report
    assert f"train_gan: last {min(len(finished_gan_runs), 5)} runs" in report
    # Which data and which DVC experiment each run was, with its generation metrics.
    experiment = client.get_run(newest.run_id).data.tags["latentlab.dvc_experiment"]
    assert experiment and f"<td>{experiment}</td>" in report
    generation = report.split("<h3 id='generation-last")[1].split("</table>")[0]
    for column in ("dataset", "image", "dvc_exp", "GAN FD ↓", "GAN KID ↓", "VAE FD ↓"):
        assert f"<th>{column}</th>" in generation
    assert "<td>digits</td><td>8×8×1</td>" in generation
    compare = subprocess.run([sys.executable, "-m", "latentlab.compare", "--stage", "train_gan"],
                             cwd=built_copy, capture_output=True, text=True,
                             env={**os.environ, "MLFLOW_TRACKING_URI": built.server.url})
    assert compare.returncode == 0, compare.stderr
    assert "train_gan.images_seen" in compare.stdout and "epochs_trained" in compare.stdout
    assert "dataset" in compare.stdout and experiment in compare.stdout


def test_a_tracking_outage_loses_nothing(built_copy, tmp_path):
    down = MlflowServer(tmp_path / "mlflow", free_port())  # nothing listens on its port yet
    # A GAN knob reruns the GAN and what reads it, never the autoencoder or the VAE. DVC writes
    # the value in YAML 1.2 (1e-05), which the stage must read as a float.
    proc = dvc(built_copy, "exp", "run", "-S", "train_gan.learning_rate=0.00001", tracking=down.url)
    assert ran(proc) == {"index", "train_gan", "evaluate", "render"}, proc.stdout
    assert "learning_rate: 1e-05" in (built_copy / "params.yaml").read_text()
    resolved = yaml.safe_load((built_copy / "models/gan/params.resolved.yaml").read_text())
    assert resolved["train_gan"]["learning_rate"] == 1e-05
    assert proc.stderr.count("MLflow unreachable") == 3, proc.stderr[-3000:]
    assert (built_copy / "reports/index.html").is_file()  # every output is written
    pending = sorted((built_copy / "mlflow-pending").iterdir())
    assert sorted(p.name.split("-")[2] for p in pending) == ["evaluate", "render", "train_gan"]
    keys = {json.loads((p / "record.json").read_text())["pipeline_key"] for p in pending}
    assert len(keys) == 1 and None not in keys

    server = down.start()
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
        sync = subprocess.run([sys.executable, "-m", "latentlab.tracking", "sync"],
                              cwd=built_copy, capture_output=True, text=True, env=env)
        assert sync.returncode == 0, sync.stderr
        assert not any((built_copy / "mlflow-pending").iterdir())
        client = server.client()
        runs = runs_of(client)
        parents = [r for r in runs if r.data.tags.get("latentlab.kind") == "pipeline"]
        assert [p.data.tags["latentlab.pipeline_key"] for p in parents] == list(keys)
        children = {r.data.tags["latentlab.stage"]: r for r in runs_of(client, parents[0].info.run_id)}
        assert set(children) == {"train_gan", "evaluate", "render"}  # synced runs join one parent
        assert all(r.info.status == "FINISHED" for r in children.values())
        assert "final_d_loss" in children["train_gan"].data.metrics
        assert client.search_model_versions("name='latentlab-gan-generator'")
        again = subprocess.run([sys.executable, "-m", "latentlab.tracking", "sync"],
                               cwd=built_copy, capture_output=True, text=True, env=env)
        assert again.returncode == 0 and len(runs_of(client)) == len(runs)  # sent once only
    finally:
        server.stop()
