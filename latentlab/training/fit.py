"""Resumable training: a checkpoint per epoch (weights and optimizer state), early stopping whose
state survives a restart, and a history that a stage writes out for `dvc plots`.

A checkpoint directory belongs to one configuration: its ``key`` (a hash of the params and the
data) is stored with it, and a checkpoint made under another key is discarded, never resumed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

STATE = "state.json"
LAST = "last.weights.h5"
BEST = "best.weights.h5"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and the Keras backend; make TensorFlow's ops deterministic."""
    random.seed(seed)
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_weights_atomic(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f"tmp.{path.name}")  # keeps the .weights.h5 suffix Keras requires
    model.save_weights(tmp)
    os.replace(tmp, path)


@dataclass
class FitState:
    key: str
    epoch: int = -1            # the last completed epoch (0-based); -1 = none yet
    history: dict | None = None
    best: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    done: bool = False

    @classmethod
    def load(cls, directory: Path, key: str) -> FitState:
        path = directory / STATE
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("key") == key and (directory / LAST).is_file():
                return cls(**saved)
            log.info("%s: checkpoint is for other params or data; starting afresh", directory)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(key=key, history={})

    def save(self, directory: Path) -> None:
        _write_atomic(directory / STATE, json.dumps(self.__dict__, indent=1))


class Checkpointer(keras.callbacks.Callback):
    """After every epoch: record the logs, keep the best weights, save the last weights and the
    optimizer state, then stop early when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, directory: Path, state: FitState, monitor: str, patience: int | None):
        super().__init__()
        self.directory, self.state = directory, state
        self.monitor, self.patience = monitor, patience

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        state = self.state
        for name, value in logs.items():
            state.history.setdefault(name, []).append(float(value))
        value = float(logs.get(self.monitor, logs.get("loss", math.nan)))
        if value < state.best:
            state.best, state.best_epoch, state.wait = value, epoch, 0
            _save_weights_atomic(self.model, self.directory / BEST)
        else:
            state.wait += 1
        _save_weights_atomic(self.model, self.directory / LAST)
        state.epoch = epoch
        if self.patience is not None and state.wait >= self.patience:
            log.info("early stop after epoch %d: best %s %.5f at epoch %d",
                     epoch + 1, self.monitor, state.best, state.best_epoch + 1)
            self.model.stop_training = True
            state.done = True
        state.save(self.directory)


def fit_resumable(
    model: keras.Model,
    x,
    y,
    *,
    directory: Path,
    key: str,
    epochs: int,
    batch_size: int,
    validation_data=None,
    patience: int | None = None,
    callbacks: tuple = (),
    verbose: int | None = None,
) -> dict[str, list[float]]:
    """``model.fit`` that resumes from ``directory`` and ends on the best weights.

    The model must be compiled. Returns the per-epoch history, including epochs trained before
    a restart. A finished fit under the same key is not repeated: its best weights are loaded.
    """
    directory = Path(directory)
    state = FitState.load(directory, key)
    if state.epoch >= 0:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(directory / LAST)
        log.info("resuming %s from epoch %d of %d", model.name, state.epoch + 2, epochs)
    if verbose is None:  # a progress bar on a terminal, a line per epoch in logs
        verbose = 1 if sys.stdout.isatty() else 2
    monitor = "val_loss" if validation_data is not None else "loss"
    if not state.done and state.epoch + 1 < epochs:
        checkpointer = Checkpointer(directory, state, monitor, patience)
        model.fit(
            x, y,
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=state.epoch + 1,
            validation_data=validation_data,
            callbacks=[checkpointer, *callbacks],
            verbose=verbose,
        )
    state.done = True
    state.save(directory)
    if (directory / BEST).is_file():
        model.load_weights(directory / BEST)
    return state.history


def write_history(history: dict[str, list[float]], path: Path, offset: int = 0) -> None:
    """Per-epoch history as CSV (``epoch`` then one column per metric), for `dvc plots`."""
    names = sorted(history)
    rows = zip(*(history[n] for n in names))
    lines = [",".join(["epoch", *names])]
    lines += [",".join([str(offset + i + 1), *(f"{v:.6g}" for v in row)]) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 images → float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 255.0
