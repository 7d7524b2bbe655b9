"""Copies of the project, the tiny params that run its whole DAG in about a minute, and DVC."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.data import passes

ROOT = Path(__file__).resolve().parents[2]


def copy_project(where: Path) -> Path:
    """A copy of the project's files in a fresh git repo, for running DVC end to end."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.split()
    dest = where / "project"
    for rel in listed:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest



# Params that run the whole DAG on digits (8×8) in about a minute.
TINY_PIPELINE = {
    "data": {"source": "digits"},
    "downsample": {"image_size": 8},
    # The plain autoencoder: the contrastive one has tests of its own and runs in the jax build.
    "pretrain": {"codings": 8, "conv_filters": [8, 16], **passes(2), "batch_size": 64,
                 "contrastive_weight": 0.0},
    "finetune": {"labels_per_class": [3], "seeds": 1, "head_units": 8, "head_epochs": 1,
                 "finetune_epochs": 1, "min_epoch_images": 64},
    "train_vae": {"latent": 4, "hidden_units": [32], **passes(2), "batch_size": 64},
    "train_gan": {"filters": [8, 16], "latent": 8, **passes(2), "batch_size": 32,
                  "grid_size": 4},
    "evaluator": {**passes(1), "min_accuracy": 0.0},  # the supervised features, however weak
    "evaluate": {"samples": 200, "kid_subsets": 3, "kid_subset_size": 100,
                 "memorization_samples": 100},
    "render": {"map_points": 100, "map_thumbnails": 20, "grid_size": 4},
}


def set_params(project: Path, **blocks: dict) -> None:
    """Update blocks of the project's params.yaml."""
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for block, values in blocks.items():
        if isinstance(values, dict):
            params[block].update(values)
        else:  # a top-level list: generators
            params[block] = values
    path.write_text(yaml.safe_dump(params, sort_keys=False))


STAGES = ("index", "download", "downsample", "pretrain", "finetune", "train@vae", "train@gan",
          "evaluator", "evaluate", "score@vae", "score@gan", "render")  # the default generators


def ran(output: str | subprocess.CompletedProcess) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    if isinstance(output, subprocess.CompletedProcess):
        output = output.stdout + output.stderr
    return set(re.findall(r"Running stage '([^']+)'", output))


def dvc_env(tracking: str | None = None) -> dict:
    """The environment of a `dvc` run: this interpreter on PATH, tracking on ``tracking`` or off."""
    env = {**os.environ, "LATENTLAB_TRACKING": "1" if tracking else "0"}
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def dvc(project: Path, *args: str, check: bool = True, tracking: str | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run DVC in ``project`` with this interpreter on PATH (the stages run `python -m ...`).

    MLflow tracking is off unless ``tracking`` names a tracking URI: only the tracking tests
    need it, and it is slow. A command that finds the repository locked by another waits.
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", "--wait-for-lock", *args], cwd=project,
                          env=dvc_env(tracking), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def commit_all(project: Path, message: str) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=project, check=True)


def tiny_project(where: Path, **blocks: dict) -> Path:
    project = copy_project(where)
    set_params(project, **TINY_PIPELINE)
    set_params(project, **blocks)
    commit_all(project, "tiny params")
    return project

