"""Training budgets in images seen, not epochs (StyleGAN's ``kimg``): a 600-image folder trains
as many steps as Fashion-MNIST's 54,000 images for the same budget.

An epoch, the unit of checkpoints, log lines, sample grids and early stopping, is one pass over
the train split, or for a split smaller than ``min_epoch_images`` as many shuffled passes as make
at least that many images. The number of epochs is derived: the budget over the images of one
epoch, rounded, at least one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras
import numpy as np

from latentlab.data.prepared import as_float
from latentlab.precision import current


@dataclass(frozen=True)
class Budget:
    train_size: int       # images in the train split
    batch_size: int
    steps_per_epoch: int
    epochs: int
    drop_remainder: bool  # custom loops train full batches only; Keras' fit keeps the last one

    @property
    def epoch_images(self) -> int:
        if self.repeated or self.drop_remainder:
            return self.steps_per_epoch * self.batch_size
        return self.train_size

    @property
    def repeated(self) -> bool:
        """Whether an epoch repeats the split (it is smaller than ``min_epoch_images``)."""
        return self.steps_per_epoch > max(_whole_batches(self.train_size, self.batch_size,
                                                         self.drop_remainder), 1)

    @property
    def passes(self) -> int:
        """Shuffled passes over the split that one epoch draws its images from."""
        return math.ceil(self.epoch_images / self.train_size)

    @property
    def images(self) -> int:
        return self.epochs * self.epoch_images

    def record(self, epochs_done: int) -> dict:
        """What a stage writes beside its models (``training.json``): how much it trained, and in
        which precision."""
        return {"images_seen": epochs_done * self.epoch_images, "epochs": epochs_done,
                "planned_images": self.images, "planned_epochs": self.epochs,
                "train_images": self.train_size, "batch_size": self.batch_size,
                "precision": current()}

    def describe(self, stage: str) -> str:
        """The log line that says up front how long a stage will train."""
        repeat = (f"; the {self.train_size:,}-image split repeated up to {self.passes}× per epoch"
                  if self.repeated else "")
        return (f"{stage}: training on {self.images:,} images ({self.epochs * self.steps_per_epoch:,}"
                f" steps of {self.batch_size}) in {self.epochs} epochs of {self.epoch_images:,}"
                f"{repeat}")


def _whole_batches(train_size: int, batch_size: int, drop_remainder: bool) -> int:
    """Batches in one pass over the split (the last partial one too, unless dropped)."""
    return train_size // batch_size if drop_remainder else math.ceil(train_size / batch_size)


def plan(train_size: int, batch_size: int, images_seen: int, min_epoch_images: int,
         drop_remainder: bool = True) -> Budget:
    """The epochs that train about ``images_seen`` images of a ``train_size``-image split."""
    steps = max(_whole_batches(train_size, batch_size, drop_remainder),
                math.ceil(min_epoch_images / batch_size), 1)
    one = Budget(train_size, batch_size, steps, 1, drop_remainder)
    return dataclasses.replace(one, epochs=max(1, round(images_seen / one.epoch_images)))


def epoch_order(rng: np.random.Generator, train_size: int, count: int) -> np.ndarray:
    """``count`` indices into the split: shuffled passes over it, drawn from ``rng``, back to back."""
    passes = max(1, math.ceil(count / train_size))
    return np.concatenate([rng.permutation(train_size) for _ in range(passes)])[:count]


class RepeatedImages(keras.utils.PyDataset):
    """A Keras fit's input for an epoch that repeats a small split: each epoch's batches come from
    shuffled passes seeded by (seed, epoch), so a resumed fit sees what an uninterrupted one does.
    Yields (x, x) for an autoencoder, (x, labels) when labels are given, (x,) without
    ``targets``; images are converted to float per batch, never the repeated split at once."""

    def __init__(self, images: np.ndarray, budget: Budget, seed: int, labels=None,
                 targets: bool = True):
        super().__init__()
        self.images, self.labels, self.budget, self.seed = images, labels, budget, seed
        self.targets = targets
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self.order = epoch_order(rng, len(self.images), self.budget.epoch_images)

    def __len__(self) -> int:
        return self.budget.steps_per_epoch

    def __getitem__(self, index: int):
        b = self.budget.batch_size
        chosen = np.sort(self.order[index * b:(index + 1) * b])
        x = self.images[chosen]
        x = as_float(x) if x.dtype == np.uint8 else np.asarray(x, dtype=np.float32)
        if not self.targets:
            return (x,)
        return x, (x if self.labels is None else self.labels[chosen])


class EpochSetter(keras.callbacks.Callback):
    """Tells a `RepeatedImages` which epoch begins, before its first batch is drawn."""

    def __init__(self, dataset: RepeatedImages):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


def plan_block(block, train_size: int, drop_remainder: bool = True) -> Budget:
    """`plan` from a training block's ``batch_size``, ``images_seen`` and ``min_epoch_images``."""
    return plan(train_size, block.batch_size, block.images_seen, block.min_epoch_images,
                drop_remainder)


def fit_inputs(images: np.ndarray, budget: Budget, seed: int, labels=None,
               targets: bool = True) -> dict:
    """Keras ``fit`` arguments that train one epoch of ``budget`` per epoch: the arrays themselves
    when an epoch is one pass, else a `RepeatedImages` and the callback that seeds its epochs.

    The targets are ``labels``, else the images themselves (an autoencoder's); ``targets=False``
    for a model whose loss reads no targets (it computes its own from the images): then none are
    passed, since Keras would copy and shuffle a second array as large as the images for nothing
    (a fifth of the contrastive pretrain's time on Fashion-MNIST)."""
    if not budget.repeated:
        x = as_float(images)
        y = labels if labels is not None else x if targets else None
        return {"x": x, "y": y, "batch_size": budget.batch_size, "callbacks": []}
    dataset = RepeatedImages(images, budget, seed, labels, targets)
    return {"x": dataset, "y": None, "batch_size": None, "shuffle": False,
            "callbacks": [EpochSetter(dataset)]}
