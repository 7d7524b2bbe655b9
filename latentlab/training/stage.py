"""What the generative stages share: their training data, epoch frames and output files."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np

from latentlab.data.prepared import is_labeled, load_split, read_meta
from latentlab.errors import UserError
from latentlab.galleries import save_grid
from latentlab.io import write_json
from latentlab.training.fit import write_history


def train_and_val(prepared: Path, stage: str, max_train_images: int, seed: int):
    """(train images, train labels, val images), uint8; a seeded sample of train if asked."""
    train, labels = load_split(prepared, "train")
    val, _ = load_split(prepared, "val")
    if len(val) == 0:
        raise UserError(f"{stage} needs a val split: set downsample.val_fraction > 0")
    if max_train_images and max_train_images < len(train):
        keep = np.sort(np.random.default_rng(seed).choice(len(train), max_train_images, False))
        train, labels = train[keep], labels[keep]
    return train, labels, val


def class_names(prepared: Path, labels: np.ndarray, stage: str) -> list[str]:
    """The classes a class-conditional model is trained on; a UserError when the data has none."""
    meta = read_meta(prepared)
    if not is_labeled(meta, labels):
        raise UserError(f"{stage}.conditional=true needs a labeled dataset with two classes or "
                        f"more; this one has not: set {stage}.conditional=false")
    return list(meta["class_names"])


def to_signed_range(images: np.ndarray) -> np.ndarray:
    """uint8 pixels as floats in [-1, 1]: what the GAN and the diffusion model train on."""
    return images.astype(np.float32) / 127.5 - 1.0


def from_signed_range(images) -> np.ndarray:
    """A network's [-1, 1] output (any backend's tensor) as uint8 pixels."""
    images = np.asarray(keras.ops.convert_to_numpy(images))
    return np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def save_frame(images: np.ndarray, frames: Path, epoch: int, columns: int) -> None:
    """One epoch's sample grid (uint8 images), named so frames sort in epoch order."""
    frames.mkdir(parents=True, exist_ok=True)
    save_grid(images, frames / f"epoch_{epoch + 1:03d}.png", columns)


def copy_frames(frames: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for frame in sorted(frames.glob("epoch_*.png")):
        shutil.copy2(frame, dest / frame.name)


def write_outputs(metrics: dict, metrics_path: Path, history: dict[str, list[float]],
                  history_path: Path) -> None:
    for path in (metrics_path, history_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_json(metrics_path, metrics)
    write_history(history, history_path)
