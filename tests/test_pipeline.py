"""The DVC pipeline end to end in a temp copy of the project: caching and rerun rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import make_image_folder

pytestmark = pytest.mark.slow


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The stages run as `python -m ...`: make that the interpreter running the tests.
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def set_params(project: Path, **blocks: dict) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for block, values in blocks.items():
        params[block].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


STAGES = ("download", "downsample", "pretrain", "finetune")
TINY = {
    "pretrain": {"codings": 8, "conv_filters": [8, 16], "epochs": 2, "batch_size": 64},
    "finetune": {"labels_per_class": [3], "seeds": 1, "head_units": 8, "head_epochs": 1,
                 "finetune_epochs": 1, "min_epoch_images": 64, "augment": "none"},
}


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    out = proc.stdout + proc.stderr
    return {s for s in STAGES if f"Running stage '{s}'" in out}


def test_repro_caches_and_reruns_only_what_changed(project):
    set_params(project, data={"source": "digits"}, downsample={"image_size": 8}, **TINY)
    subprocess.run(["git", "commit", "-qam", "digits", "--author", "t <t@localhost>"],
                   cwd=project, check=True, env={**os.environ, "GIT_COMMITTER_NAME": "t",
                                                 "GIT_COMMITTER_EMAIL": "t@localhost"})
    assert ran(dvc(project, "repro", "download", "downsample")) == {"download", "downsample"}
    images = np.load(project / "data/prepared/train_images.npy")
    assert images.shape[1:] == (8, 8, 1)
    assert (project / "reports/data/train_samples.png").is_file()
    assert ran(dvc(project, "repro")) == {"pretrain", "finetune"}
    assert (project / "models/pretrain/encoder.keras").is_file()
    metrics = dvc(project, "metrics", "show", "--json").stdout
    assert "val_mse" in metrics and "pretrained_mean" in metrics

    second = dvc(project, "repro")
    assert ran(second) == set(), second.stdout
    assert "didn't change, skipping" in second.stdout

    changed = dvc(project, "exp", "run", "-S", "downsample.image_size=12")
    assert ran(changed) == {"downsample", "pretrain", "finetune"}, changed.stdout
    assert np.load(project / "data/prepared/train_images.npy").shape[1:] == (12, 12, 1)

    only_finetune = dvc(project, "exp", "run", "-S", "finetune.seeds=2")
    assert ran(only_finetune) == {"finetune"}, only_finetune.stdout


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
