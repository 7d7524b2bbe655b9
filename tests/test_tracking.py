"""MLflow tracking against a real `mlflow server` on loopback: the pipeline's runs, and an outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support.project import dvc, ran, set_params
from tests.support.servers import MlflowServer, free_port

pytestmark = pytest.mark.slow

STAGES = {"download", "downsample", "pretrain", "finetune", "train_vae", "train_gan", "evaluator",
          "evaluate", "score@vae", "score@gan", "render"}
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


TRAINING = {"pretrain", "finetune", "train_vae", "train_gan", "evaluator", "evaluate", "score@vae",
            "score@gan"}


def test_runs_span_their_stages_and_carry_what_the_mlflow_ui_shows(built):
    client = built.server.client()
    parent = client.get_run(built.parent_run_id)
    runs = {r.data.tags["latentlab.stage"]: r for r in runs_of(client, built.parent_run_id)}
    # a stage's run spans its process; the parent spans the stages, which ran one after another
    for run in runs.values():
        assert run.info.start_time < run.info.end_time <= int(run.data.tags["latentlab.logged_at"])
    assert parent.info.status == "FINISHED"
    assert parent.info.start_time <= min(r.info.start_time for r in runs.values())
    assert parent.info.end_time >= max(r.info.end_time for r in runs.values())
    assert parent.info.end_time - parent.info.start_time >= sum(
        r.info.end_time - r.info.start_time for r in runs.values())
    assert parent.info.run_name == "pipeline digits 8×8×1"
    assert parent.data.tags["latentlab.image_shape"] == "8×8×1"
    # the prepared splits are the training stages' dataset inputs, digest = the data hash tag
    for stage, run in runs.items():
        inputs = run.inputs.dataset_inputs
        if stage not in TRAINING:
            assert inputs == [], stage
            continue
        data_hash = run.data.tags["latentlab.data_hash"]
        assert {(i.dataset.name, i.dataset.digest, i.tags[0].value) for i in inputs} == {
            (f"digits 8×8×1 {split}", data_hash, context) for split, context in
            (("train", "training"), ("val", "validation"), ("test", "test"))}, stage
        assert json.loads(inputs[0].dataset.source)["uri"].endswith("_images.npy")
    assert {i.dataset.name for i in parent.inputs.dataset_inputs} == {
        i.dataset.name for i in runs["pretrain"].inputs.dataset_inputs}
    # each epoch's sample grid is an image with its epoch as step
    for stage, key in (("train_gan", "gan_samples"), ("train_vae", "vae_samples")):
        images = [a.path for a in client.list_artifacts(runs[stage].info.run_id, "images")
                  if a.path.endswith(".png")]
        assert sorted(int(p.split("+step+")[1].split("+")[0]) for p in images) == [1, 2], images
        assert all(p.startswith(f"images/{key}+") for p in images)
    # the headline scores under names that need no legend, equal to the metrics they repeat
    gan, vae = runs["score@gan"].data.metrics, runs["score@vae"].data.metrics
    assert gan["GAN FD"] == gan["gan.frechet_distance"]
    assert vae["VAE KID"] == vae["vae.kid"]
    assert runs["score@gan"].data.tags["mlflow.source.name"] == "stages/score.py"
    finetune = runs["finetune"].data.metrics
    assert finetune["accuracy 30 labels pretrained"] == finetune["labels_30.pretrained_mean"]
    assert runs["pretrain"].data.metrics["autoencoder val MSE"] == runs["pretrain"].data.metrics["val_mse"]
    assert runs["train_gan"].data.tags["mlflow.source.name"] == "stages/train.py"


def test_a_failed_stage_is_a_failed_run_under_a_failed_parent(built, built_copy, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "latentlab-failure")
    set_params(built_copy, finetune={"labels_per_class": [100_000]})  # more than there are
    proc = dvc(built_copy, "repro", "finetune", check=False, tracking=built.server.url)
    assert proc.returncode != 0 and "stage finetune failed" in proc.stderr, proc.stderr[-2000:]
    client = built.server.client()
    experiment = client.get_experiment_by_name("latentlab-failure")
    [run] = client.search_runs([experiment.experiment_id], "tags.`latentlab.stage` = 'finetune'")
    assert run.info.status == "FAILED"
    assert "labels" in run.data.tags["latentlab.error"]
    assert run.data.tags["latentlab.source"] == "digits"
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FAILED"
    assert parent.info.end_time >= run.info.end_time


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
    assert rerun == {"train_gan", "score@gan", "render"}  # only what the change reran

    finished_gan_runs = [r for r in runs_of(client) if r.info.status == "FINISHED"
                         and r.data.tags.get("latentlab.stage") == "train_gan"]
    report = (built_copy / "reports/index.html").read_text()
    assert "Earlier runs (MLflow)" in report
    assert f"train_gan: last {min(len(finished_gan_runs), 5)} runs" in report
    # A stage's runs are its columns, newest first, its params and metrics the rows.
    runs_table = report.split("<h3 id='train-gan-last")[1].split("</table>")[0]
    assert f"<th>run</th><th>{newest.run_id[:8]}</th>" in runs_table
    assert "<tr><td>train_gan.images_seen</td><td>1439</td>" in runs_table
    # Which data and which DVC experiment each run was, with its generation metrics.
    experiment = client.get_run(newest.run_id).data.tags["latentlab.dvc_experiment"]
    assert experiment and f"<td>{experiment}</td>" in report
    generation = report.split("<h3 id='generation-gan-last")[1].split("</table>")[0]
    for column in ("dataset", "image", "dvc_exp", "GAN FD ↓", "GAN KID ↓"):
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
    assert ran(proc) == {"index", "train@gan", "score@gan", "render"}, proc.stdout
    assert "learning_rate: 1e-05" in (built_copy / "params.yaml").read_text()
    resolved = yaml.safe_load((built_copy / "models/gan/params.resolved.yaml").read_text())
    assert resolved["train_gan"]["learning_rate"] == 1e-05
    assert proc.stderr.count("MLflow unreachable") == 3, proc.stderr[-3000:]
    assert (built_copy / "reports/index.html").is_file()  # every output is written
    pending = sorted((built_copy / "mlflow-pending").iterdir())
    assert sorted(p.name.split("-")[2] for p in pending) == ["render", "score@gan", "train_gan"]
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
        assert set(children) == {"train_gan", "score@gan", "render"}  # synced runs join one parent
        assert all(r.info.status == "FINISHED" for r in children.values())
        assert "final_d_loss" in children["train_gan"].data.metrics
        assert client.search_model_versions("name='latentlab-gan-generator'")
        again = subprocess.run([sys.executable, "-m", "latentlab.tracking", "sync"],
                               cwd=built_copy, capture_output=True, text=True, env=env)
        assert again.returncode == 0 and len(runs_of(client)) == len(runs)  # sent once only
    finally:
        server.stop()
