"""Seeded, class-stratified splits and nested labeled subsets."""

from __future__ import annotations

import logging

import numpy as np

from latentlab.data.raw import UNLABELED
from latentlab.errors import UserError

log = logging.getLogger(__name__)


def _stratifiable(labels: np.ndarray) -> bool:
    return len(labels) > 0 and not (labels == UNLABELED).any()


def carve(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices 0..n-1 into (kept, carved) with ``fraction`` carved, stratified by label.

    Every class keeps its share (rounded), so a carved split holds each class in proportion.
    Both returned index arrays are sorted, so a stream can route items in one ordered pass.
    """
    n = len(labels)
    if fraction <= 0 or n == 0:
        return np.arange(n), np.array([], dtype=np.int64)
    rng = np.random.default_rng(seed)
    if not _stratifiable(labels):
        order = rng.permutation(n)
        k = int(round(n * fraction))
        return np.sort(order[k:]), np.sort(order[:k])
    carved, alone = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) == 1:  # it cannot be in two splits: it stays in train
            alone.append(int(cls))
        k = min(int(round(len(members) * fraction)), len(members) - 1)
        carved.append(rng.permutation(members)[:k])
    if alone:
        log.warning("a class with a single image stays in train, with no val or test image; "
                    "the other classes are split by class as usual. Single-image classes: %s",
                    ", ".join(map(str, alone)))
    taken = np.sort(np.concatenate(carved))
    kept = np.setdiff1d(np.arange(n), taken, assume_unique=True)
    return kept, taken


def labeled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of each class, seeded.

    Subsets are nested: for one seed, the subset for k labels per class is contained in the
    subset for any larger k, because each class is ranked by one seeded permutation.
    """
    if per_class <= 0:
        raise UserError(f"labels_per_class={per_class}: must be a positive number of labels")
    if len(labels) == 0 or (labels == UNLABELED).any():
        raise UserError(
            "labels_per_class: the dataset is unlabeled; fine-tuning needs a labeled source "
            "(class sub-folders, or a TFDS dataset with a ClassLabel)"
        )
    classes, counts = np.unique(labels, return_counts=True)
    if per_class > counts.min():
        poorest = classes[counts.argmin()]
        raise UserError(
            f"labels_per_class={per_class}: class {poorest} has only {counts.min()} labeled train "
            f"images; choose at most {counts.min()}"
        )
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == cls))[:per_class] for cls in classes]
    return np.sort(np.concatenate(picked))
