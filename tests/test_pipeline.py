"""The DVC pipeline end to end: caching and rerun rules, and repeatability."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess

import numpy as np
import pytest
import yaml
from PIL import Image

from latentlab import cli, ladder
from latentlab.families import FAMILIES
from tests.support.data import make_image_folder
from tests.support.project import STAGES, dvc, ran, set_params

pytestmark = pytest.mark.slow


def test_the_first_repro_ran_every_stage_and_a_second_runs_none(built, built_copy):
    assert ran(built.output) == set(STAGES)
    # Quiet by default: none of TensorFlow's native start-up lines, nor MLflow's uv/pip notes.
    for noise in ("absl::InitializeLog", "cuInit", "cuda drivers", "Detected uv project",
                  "Failed to resolve installed pip version"):
        assert noise not in built.output
    project = built.project
    images = np.load(project / "data/prepared/train_images.npy")
    assert images.shape[1:] == (8, 8, 1)
    assert (project / "reports/data/train_samples.png").is_file()
    assert (project / "models/pretrain/encoder.keras").is_file()
    metrics = dvc(project, "metrics", "show", "--json").stdout
    assert "val_mse" in metrics and "pretrained_mean" in metrics
    # Every plot loads but the loss curves of the families left out of `generators` (nothing
    # trained them); none comes from the test suite's own files.
    plots = json.loads(dvc(project, "plots", "show", "--json").stdout)
    generators = yaml.safe_load((project / "params.yaml").read_text())["generators"]
    assert {e["name"] for e in plots.get("errors", [])} <= {
        f"{name}_history" for name in FAMILIES if name not in generators}, plots.get("errors")
    assert "toy_history" not in plots["data"]

    second = dvc(built_copy, "repro")  # the shared build stays read-only
    assert ran(second) == {"index"}, second.stdout  # it lists data.local_dir on every repro
    assert "didn't change, skipping" in second.stdout


def test_a_changed_param_reruns_only_the_stages_that_read_it(built_copy):
    # (A GAN knob: test_tracking's outage test, which changes one.)
    changed = dvc(built_copy, "exp", "run", "downsample", "-S", "downsample.image_size=12")
    assert ran(changed) == {"index", "downsample"}, changed.stdout  # not download
    assert np.load(built_copy / "data/prepared/train_images.npy").shape[1:] == (12, 12, 1)


def test_a_fresh_clone_pulls_the_run_from_a_shared_dvc_remote(built_copy, tmp_path):
    # What a teammate does: clone, `dvc pull`, and have the whole run without training anything.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    dvc(built_copy, "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    subprocess.run(["git", "add", "-A"], cwd=built_copy, check=True)
    subprocess.run([*git, "commit", "-qm", "the run"], cwd=built_copy, check=True)
    dvc(built_copy, "push")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(built_copy), str(clone)], check=True)
    assert not (clone / "models/gan/generator.keras").exists()  # in the DVC cache, not in git
    dvc(clone, "pull")
    again = dvc(clone, "repro")
    # index lists data.local_dir each time; the clone's listing (by content) matches the lock
    assert ran(again) == {"index"}, again.stdout
    status = json.loads(dvc(clone, "status", "--json").stdout)
    assert status == {"index": ["always changed"]}, status
    for path in ("models/gan/generator.keras", "models/finetune/classifier.keras",
                 "data/prepared/train_images.npy", "reports/index.html", "metrics/evaluate/gan.json"):
        assert (clone / path).read_bytes() == (built_copy / path).read_bytes(), path


def test_changed_library_code_reruns_the_stages_that_import_it(built_copy):
    # latentlab/models/sampling.py is read by evaluate, the scores and render, not by any
    # training stage.
    path = built_copy / "latentlab/models/sampling.py"
    path.write_text(path.read_text() + "\n# a change\n")
    status = dvc(built_copy, "status", "--json")
    assert set(yaml.safe_load(status.stdout)) == {"index", "evaluate", "score@vae", "score@gan",
                                                  "render"}, status.stdout


def test_two_runs_give_byte_identical_metrics_and_histories(built, rebuilt):
    assert not (rebuilt / "mlflow.db").exists() and not (rebuilt / "mlruns").exists()  # tracking off
    # Two whole runs from scratch of the same project and params (one tracked, one not).
    files = sorted(p.relative_to(built.project)
                   for pattern in ("metrics/**/*.json", "plots/*.csv")
                   for p in built.project.glob(pattern))
    assert len(files) >= 10
    differ = [str(f) for f in files if (built.project / f).read_bytes() != (rebuilt / f).read_bytes()]
    assert differ == [], f"not repeatable with one seed: {differ}"


def test_every_metrics_file_and_model_record_is_standard_json(built, unlabeled_built):
    def refuse(word):
        raise ValueError(f"{word} is not standard JSON")

    for project in (built.project, unlabeled_built[0]):
        files = [*project.glob("metrics/**/*.json"), *project.glob("models/*/*.json")]
        assert len(files) >= 10
        for path in files:
            json.loads(path.read_text(), parse_constant=refuse)


def test_an_unlabeled_folder_of_rgba_sprites_runs_to_an_honest_report(unlabeled_built, tmp_path):
    project, output = unlabeled_built
    assert ran(output) == {*STAGES, "train@diffusion", "score@diffusion", "train@fastgan",
                           "score@fastgan"}
    images = np.load(project / "data/prepared/train_images.npy")
    assert images.shape[1:] == (16, 16, 3)
    assert (images[:, 0, 0] == 255).all()  # transparent corners became white
    finetune = json.loads((project / "metrics/finetune.json").read_text())
    assert finetune["available"] is False and "has no labels" in finetune["reason"]
    assert json.loads((project / "metrics/evaluator.json").read_text())["features"] == "contrastive"
    anchors = json.loads((project / "metrics/evaluate/anchors.json").read_text())
    assert anchors["feature_space"] == "the contrastive evaluator's features (trained without labels)"
    assert list(anchors["ladder"]) == list(ladder.NAMES)
    assert "The ladder: degraded real images" in (project / "reports/index.html").read_text()
    assert "classes_covered" not in json.loads((project / "metrics/evaluate/gan.json").read_text())
    diffusion = json.loads((project / "metrics/evaluate/diffusion.json").read_text())
    assert {"frechet_distance_at_2_steps", "frechet_distance_at_5_steps", "verdict"} <= set(diffusion)
    html = (project / "reports/index.html").read_text()
    assert "<td>Diffusion</td>" in html and "diffusion_denoising.png" in html
    assert "diffusion_fd_steps.png" in html
    fastgan = json.loads((project / "metrics/evaluate/fastgan.json").read_text())
    assert {"frechet_distance", "ladder_position", "verdict"} <= set(fastgan)
    assert "<td>FastGAN</td>" in html and "FastGAN training" in html
    assert "fastgan_samples.png" in html and "fastgan_nearest.png" in html
    cli.main(["sample", str(project / "models/fastgan/generator.keras"), "-n", "4", "--grid",
              "-o", str(tmp_path / "fastgan.png")])  # trained on jax, drawn here
    assert Image.open(tmp_path / "fastgan.png").size[0] >= 2 * 16
    assert "Label efficiency: not applicable" in html and "coloured by class" not in html
    for src in re.findall(r"<img src='([^']+)'", html):
        assert (project / "reports" / src).is_file(), src


def test_a_changed_image_folder_reruns_download(project, tmp_path):
    root = tmp_path / "images"
    make_image_folder(root, ["a", "b"], per_class=10)
    # Entries DVC cannot hash (a FIFO blocks a read forever): skipped, never opened.
    os.mkfifo(root / "a" / "pipe.png")
    (root / "b" / "broken.png").symlink_to(tmp_path / "nowhere.png")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "b" / "sock.png"))
    set_params(project, data={"source": "folder", "local_dir": str(root)},
               downsample={"image_size": 16, "channels": 3})
    first = dvc(project, "repro", "downsample", timeout=300)
    assert ran(first) == {"index", "download", "downsample"}, first.stdout
    assert "skipping 3 entries that are not regular files" in first.stderr
    assert ran(dvc(project, "repro", "downsample")) == {"index"}
    Image.new("RGB", (64, 64), (9, 9, 9)).save(root / "a" / "new.png")
    rerun = dvc(project, "repro", "downsample")
    assert ran(rerun) == {"index", "download", "downsample"}, rerun.stdout
    meta = yaml.safe_load((project / "data/prepared/meta.json").read_text())
    assert sum(meta["counts"].values()) == 21 and meta["skipped"]["not_a_regular_file"] == 3

    set_params(project, data={"on_bad_image": "fail"})
    refused = dvc(project, "repro", "downsample", check=False, timeout=300)
    assert refused.returncode != 0
    assert "pipe.png is a FIFO (named pipe), not an image file, and 2 more" in refused.stderr


def test_bad_params_stop_repro_with_a_clear_message_and_no_outputs(project):
    set_params(project, data={"source": "digits"}, downsample={"image_size": 4})
    proc = dvc(project, "repro", check=False)
    assert proc.returncode != 0
    assert "downsample.image_size: Input should be greater than or equal to 8" in proc.stderr
    assert not (project / "data/raw").exists()
