"""The DVC pipeline end to end in a temp copy of the project: caching and rerun rules."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import TINY_PIPELINE, dvc, make_image_folder, set_params

pytestmark = pytest.mark.slow


STAGES = ("download", "downsample", "pretrain", "finetune", "train_vae", "train_gan",
          "evaluator", "evaluate", "render")
def ran(proc: subprocess.CompletedProcess) -> set[str]:
    out = proc.stdout + proc.stderr
    return {s for s in STAGES if f"Running stage '{s}'" in out}


def test_repro_caches_and_reruns_only_what_changed(project):
    set_params(project, **TINY_PIPELINE)
    subprocess.run(["git", "commit", "-qam", "digits", "--author", "t <t@localhost>"],
                   cwd=project, check=True, env={**os.environ, "GIT_COMMITTER_NAME": "t",
                                                 "GIT_COMMITTER_EMAIL": "t@localhost"})
    assert ran(dvc(project, "repro", "download", "downsample")) == {"download", "downsample"}
    images = np.load(project / "data/prepared/train_images.npy")
    assert images.shape[1:] == (8, 8, 1)
    assert (project / "reports/data/train_samples.png").is_file()
    assert ran(dvc(project, "repro")) == set(STAGES[2:])
    assert (project / "models/pretrain/encoder.keras").is_file()
    metrics = dvc(project, "metrics", "show", "--json").stdout
    assert "val_mse" in metrics and "pretrained_mean" in metrics

    second = dvc(project, "repro")
    assert ran(second) == set(), second.stdout
    assert "didn't change, skipping" in second.stdout

    # A GAN knob reruns the GAN and what reads it, never the autoencoder or the VAE.
    gan_only = dvc(project, "exp", "run", "-S", "train_gan.label_smoothing=0.1")
    assert ran(gan_only) == {"train_gan", "evaluate", "render"}, gan_only.stdout

    changed = dvc(project, "exp", "run", "downsample", "-S", "downsample.image_size=12")
    assert ran(changed) == {"downsample"}, changed.stdout  # not download
    assert np.load(project / "data/prepared/train_images.npy").shape[1:] == (12, 12, 1)


def test_a_changed_image_folder_reruns_download(project, tmp_path):
    root = tmp_path / "images"
    make_image_folder(root, ["a", "b"], per_class=10)
    set_params(project, data={"source": "folder", "local_dir": str(root)},
               downsample={"image_size": 16, "channels": 3})
    assert ran(dvc(project, "repro", "downsample")) == {"download", "downsample"}
    assert ran(dvc(project, "repro", "downsample")) == set()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(root / "a" / "new.png")
    rerun = dvc(project, "repro", "downsample")
    assert ran(rerun) == {"download", "downsample"}, rerun.stdout
    counts = yaml.safe_load((project / "data/prepared/meta.json").read_text())["counts"]
    assert sum(counts.values()) == 21


def test_bad_params_stop_repro_with_a_clear_message_and_no_outputs(project):
    set_params(project, data={"source": "digits"}, downsample={"image_size": 4})
    proc = dvc(project, "repro", check=False)
    assert proc.returncode != 0
    assert "downsample.image_size: Input should be greater than or equal to 8" in proc.stderr
    assert not (project / "data/raw").exists()
