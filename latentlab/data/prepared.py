"""What `downsample` hands every later stage: the prepared splits, read back.

``data/prepared/`` holds ``{split}_images.npy`` (uint8, N×S×S×C), ``{split}_labels.npy`` (int64;
UNLABELED = -1) for each split, and ``meta.json``. The training, evaluation and report stages
import only this module (and `raw`) from the data package, so their DVC deps stay narrow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.data.raw import UNLABELED, read_json
from latentlab.io import digest

SPLITS = ("train", "val", "test")


def load_split(prepared_dir: Path, split: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The (images, labels) of one prepared split; images memory-mapped by default."""
    images = np.load(prepared_dir / f"{split}_images.npy", mmap_mode="r" if mmap else None)
    labels = np.load(prepared_dir / f"{split}_labels.npy")
    return images, labels


def read_meta(prepared_dir: Path) -> dict:
    """``meta.json``: dataset name, class names (None when unlabeled), counts, image shape."""
    return read_json(prepared_dir / "meta.json")


def is_labeled(meta: dict, *labels: np.ndarray) -> bool:
    """Whether there is something to classify: two classes or more, and every given label array
    fully labeled. A single-class folder is treated like an unlabeled one."""
    return len(meta.get("class_names") or ()) >= 2 and all(not (y == UNLABELED).any() for y in labels)


def class_counts(labels: np.ndarray, class_names: list[str] | None) -> dict[str, int]:
    if class_names is None:
        return {"unlabeled": int((labels == UNLABELED).sum())}
    counts = np.bincount(labels[labels != UNLABELED], minlength=len(class_names))
    return {name: int(c) for name, c in zip(class_names, counts)}


def fingerprint(prepared_dir: Path, splits: tuple[str, ...] = SPLITS) -> str:
    """A short content hash of prepared splits, to key checkpoints and tag runs by their data."""
    return digest(*(prepared_dir / f"{s}_{kind}.npy" for s in splits for kind in ("images", "labels")))


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images → float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 255.0
