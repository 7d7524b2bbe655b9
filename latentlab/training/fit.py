"""Resumable Keras fits: a checkpoint per epoch (weights and optimizer state), early stopping
whose state survives a restart, and a history that a stage writes out for `dvc plots`.

A fit's checkpoint (see `checkpoint.py`) holds the last weights and optimizer state, the best
weights so far, and the early-stopping state; one made under another key is discarded.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import keras
import numpy as np

from latentlab.training.checkpoint import Checkpoint

log = logging.getLogger(__name__)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """``name`` as the params spell it ("adam", "nadam")."""
    return {"adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam}[name](learning_rate)


def _arrays(variables) -> dict[str, np.ndarray]:
    return {str(i): keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}


def _under(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def _assign(variables, arrays: dict[str, np.ndarray]) -> None:
    for i, variable in enumerate(variables):
        variable.assign(arrays[str(i)])


def _optimizer_variables(model: keras.Model) -> list:
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return list(model.optimizer.variables)


class Checkpointer(keras.callbacks.Callback):
    """After every epoch: record the logs, keep the best weights, save the last weights and the
    optimizer state, then stop early when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, checkpoint: Checkpoint, state: dict, monitor: str, patience: int | None):
        super().__init__()
        self.checkpoint, self.state = checkpoint, state
        self.monitor, self.patience = monitor, patience

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        state = self.state
        for name, value in logs.items():
            state["history"].setdefault(name, []).append(float(value))
        value = float(logs.get(self.monitor, logs.get("loss", math.nan)))
        arrays = {"last": {**{f"model/{k}": v for k, v in _arrays(self.model.weights).items()},
                           **{f"optimizer/{k}": v
                              for k, v in _arrays(_optimizer_variables(self.model)).items()}}}
        if value < state["best"]:
            state["best"], state["best_epoch"], state["wait"] = value, epoch, 0
            arrays["best"] = _arrays(self.model.weights)
        else:
            state["wait"] += 1
        state["epoch"] = epoch
        if self.patience is not None and state["wait"] >= self.patience:
            log.info("early stop after epoch %d: best %s %.5f at epoch %d",
                     epoch + 1, self.monitor, state["best"], state["best_epoch"] + 1)
            self.model.stop_training = True
            state["done"] = True
        self.checkpoint.save(state, **arrays)


def fit_resumable(
    model: keras.Model,
    x,
    y,
    *,
    directory: Path,
    key: str,
    epochs: int,
    batch_size: int | None,
    validation_data=None,
    patience: int | None = None,
    callbacks: tuple = (),
    verbose: int | None = None,
    shuffle: bool = True,
) -> dict[str, list[float]]:
    """``model.fit`` that resumes from ``directory`` and ends on the best weights.

    ``x``, ``y``, ``batch_size``, ``shuffle`` and ``callbacks`` as `budget.fit_inputs` gives them.

    The model must be compiled. Returns the per-epoch history, including epochs trained before
    a restart. A finished fit under the same key is not repeated: its best weights are loaded.
    ``done`` marks an early stop, which more epochs do not undo (the same params from scratch
    would stop at the same epoch).
    """
    checkpoint = Checkpoint(directory, key)
    state = checkpoint.load(epochs) or {"epoch": -1, "history": {}, "best": math.inf,
                                        "best_epoch": -1, "wait": 0, "done": False}
    if state["epoch"] >= 0:
        last = checkpoint.arrays("last")
        _assign(model.weights, _under("model/", last))
        _assign(_optimizer_variables(model), _under("optimizer/", last))
        if state["done"] or state["epoch"] + 1 >= epochs:
            log.info("%s: the checkpoint holds the finished fit (%d of %d epochs); nothing left "
                     "to train", model.name, state["epoch"] + 1, epochs)
        else:
            log.info("resuming %s from epoch %d of %d", model.name, state["epoch"] + 2, epochs)
    if verbose is None:  # a progress bar on a terminal, a line per epoch in logs
        verbose = 1 if sys.stdout.isatty() else 2
    monitor = "val_loss" if validation_data is not None else "loss"
    if not state["done"] and state["epoch"] + 1 < epochs:
        model.fit(
            x, y,
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=state["epoch"] + 1,
            validation_data=validation_data,
            callbacks=[Checkpointer(checkpoint, state, monitor, patience), *callbacks],
            verbose=verbose,
            shuffle=shuffle,
        )
    if checkpoint.has("best"):
        _assign(model.weights, checkpoint.arrays("best"))
    return state["history"]


def write_history(history: dict[str, list[float]], path: Path, offset: int = 0) -> None:
    """Per-epoch history as CSV (``epoch`` then one column per metric), for `dvc plots`."""
    names = sorted(history)
    rows = zip(*(history[n] for n in names))
    lines = [",".join(["epoch", *names])]
    lines += [",".join([str(offset + i + 1), *(f"{v:.6g}" for v in row)]) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
