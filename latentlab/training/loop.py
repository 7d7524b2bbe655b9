"""The custom training loop (VAE, GAN): functional training state, the same on every backend.

A model and its optimizer become a state (trainable, non-trainable and optimizer variables) that
step functions take and return; `shim` says what a state is on each backend, differentiates and
compiles. The state is written back into the Keras variables to save or export the models, and
saved whole (both networks, both optimizers, loop extras) as one checkpoint per epoch
(`checkpoint.py`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from latentlab.errors import UserError
from latentlab.training import shim
from latentlab.training.budget import Budget, epoch_order
from latentlab.training.checkpoint import Checkpoint

log = logging.getLogger(__name__)

KINDS = ("trainable", "non_trainable", "optimizer")


@dataclass
class Net:
    model: keras.Model
    optimizer: keras.optimizers.Optimizer | None = None

    def variables(self) -> dict[str, list]:
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        return {
            "trainable": list(self.model.trainable_variables),
            "non_trainable": list(self.model.non_trainable_variables),
            "optimizer": list(self.optimizer.variables) if self.optimizer is not None else [],
        }


def initial_state(nets: dict[str, Net]) -> dict:
    """Every net's state (see `shim`): what the pure step functions take and return."""
    return {name: shim.state_of(net.variables()) for name, net in nets.items()}


def write_back(nets: dict[str, Net], state: dict) -> None:
    """Put the values in ``state`` into the nets' Keras variables (to save or export them)."""
    if not shim.functional():
        return  # the state is the variables
    for name, net in nets.items():
        for kind, variables in net.variables().items():
            for variable, value in zip(variables, state[name][kind]):
                variable.assign(keras.ops.copy(value))


call = shim.call
apply_gradients = shim.apply_gradients


# ---- checkpoints -----------------------------------------------------------------------------

def _flatten(state: dict) -> dict[str, np.ndarray]:
    return {
        f"{name}/{kind}/{i}": keras.ops.convert_to_numpy(value)
        for name, kinds in state.items()
        for kind, values in kinds.items()
        for i, value in enumerate(values)
    }


def _unflatten(arrays, template: dict) -> dict:
    return {
        name: shim.restore(kinds, {kind: [arrays[f"{name}/{kind}/{i}"] for i in range(len(values))]
                                   for kind, values in kinds.items()})
        for name, kinds in template.items()
    }


@dataclass
class Progress:
    """What a loop carries between epochs besides the weights."""

    key: str
    epoch: int = -1  # last completed epoch, -1 = none
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. the replay pool


def save_checkpoint(checkpoint: Checkpoint, state: dict, progress: Progress) -> None:
    """Write state + progress as one checkpoint; the previous one stays until this one is whole."""
    checkpoint.save({"epoch": progress.epoch, "history": progress.history},
                    state={**_flatten(state), **{f"extra/{k}": v for k, v in progress.extra.items()}})


def load_checkpoint(directory: Path, key: str, template: dict,
                    epochs: int | None = None) -> tuple[dict, Progress] | None:
    """The checkpoint in ``directory`` if it was made under ``key`` (and, given ``epochs``, is not
    past them); else clear it, None. The state is restored into ``template``'s variables."""
    checkpoint = Checkpoint(directory, key)
    saved = checkpoint.load(epochs)
    if saved is None:
        return None
    arrays = checkpoint.arrays("state")
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return _unflatten(arrays, template), Progress(key, saved["epoch"], saved["history"], extra)


def remember_best(progress: Progress, state: dict, monitor: str) -> None:
    """After an epoch's logs are in ``progress.history``: keep ``state`` in ``progress.extra``
    (and so in the checkpoint, for a resumed run) when its ``monitor`` is the lowest so far."""
    values = progress.history[monitor]
    if values[-1] <= min(values):
        progress.extra.update({f"best/{k}": v for k, v in _flatten(state).items()})
        progress.extra["best_epoch"] = np.array(len(values) - 1)


def best_state(progress: Progress, state: dict) -> tuple[dict, int]:
    """The state `remember_best` kept and its epoch (0-based); ``state`` and the last epoch if it
    kept none."""
    if "best_epoch" not in progress.extra:
        return state, progress.epoch
    arrays = {k[len("best/"):]: v for k, v in progress.extra.items() if k.startswith("best/")}
    return _unflatten(arrays, state), int(progress.extra["best_epoch"])


class Diverged(UserError):
    """A loss became NaN or infinite."""


def check_finite(logs: dict[str, float], epoch: int, step: int, directory: Path, last_good: int) -> None:
    bad = [name for name, value in logs.items() if not math.isfinite(value)]
    if bad:
        kept = f"epoch {last_good + 1}" if last_good >= 0 else "none yet"
        raise Diverged(
            f"training diverged at epoch {epoch + 1}, step {step}: {', '.join(bad)} became "
            f"{logs[bad[0]]}; the last good checkpoint ({kept}) is kept in {directory}. "
            "Lower the learning rate, or try another loss (e.g. wgan_gp) or remedy"
        )


def epoch_batches(seed: int, epoch: int, size: int, budget: Budget,
                  batch_size: int) -> tuple[np.random.Generator, list[np.ndarray]]:
    """An epoch of a custom loop: its generator (seeded by the run's seed and the epoch, so a
    resumed run draws what an uninterrupted one does; the loop draws its noise from it next) and
    its batches, each the sorted indices of ``batch_size`` images in a shuffled order of
    ``size``, repeated where ``budget`` makes an epoch longer than the split."""
    rng = np.random.default_rng([seed, epoch])
    order = epoch_order(rng, size, budget.epoch_images)
    return rng, [np.sort(order[step * batch_size:(step + 1) * batch_size])
                 for step in range(budget.steps_per_epoch)]


class EpochLogs:
    """Averages a loop's per-step logs; checks them for NaN/inf every ``every`` steps (each check
    waits for the device, so not every step)."""

    def __init__(self, epoch: int, directory: Path, last_good: int, every: int = 50):
        self.epoch, self.directory, self.last_good, self.every = epoch, directory, last_good, every
        self.pending: list[dict] = []
        self.totals: dict[str, float] = {}
        self.count = 0

    def add(self, logs: dict, step: int) -> None:
        self.pending.append(logs)
        if len(self.pending) >= self.every:
            self._flush(step)

    def _flush(self, step: int) -> None:
        for logs in self.pending:
            values = {k: float(keras.ops.convert_to_numpy(v)) for k, v in logs.items()}
            check_finite(values, self.epoch, step, self.directory, self.last_good)
            for k, v in values.items():
                self.totals[k] = self.totals.get(k, 0.0) + v
            self.count += 1
        self.pending = []

    def means(self, step: int) -> dict[str, float]:
        self._flush(step)
        return {k: v / max(self.count, 1) for k, v in self.totals.items()}


def run_epochs(
    *,
    epochs: int,
    directory: Path,
    state: dict,
    progress: Progress,
    run_epoch: Callable[[int, dict, Progress], tuple[dict, dict[str, float]]],
    on_epoch_end: Callable[[int, dict], None] | None = None,
    epoch_images: int = 0,
) -> tuple[dict, Progress]:
    """Run epochs ``progress.epoch + 1 .. epochs - 1``, checkpointing after each.

    ``run_epoch(epoch, state, progress)`` returns the new state and the epoch's mean logs; it may
    update ``progress.extra``. A checkpoint is written only after an epoch completes, so a crash or
    a divergence loses at most the epoch in progress. Each epoch's log line says how far training
    is (images seen of ``epochs × epoch_images``) and about how long the rest will take.
    """
    checkpoint = Checkpoint(directory, progress.key)
    checkpoint.load()  # `resume` left either this key's checkpoint or an empty directory
    start, first = time.perf_counter(), progress.epoch + 1
    for epoch in range(first, epochs):
        state, logs = run_epoch(epoch, state, progress)
        check_finite(logs, epoch, -1, directory, progress.epoch)
        for name, value in logs.items():
            progress.history.setdefault(name, []).append(float(value))
        progress.epoch = epoch
        if on_epoch_end is not None:
            on_epoch_end(epoch, state)
        save_checkpoint(checkpoint, state, progress)
        log.info("epoch %d/%d%s: %s", epoch + 1, epochs,
                 _how_far(epoch, epochs, epoch_images, time.perf_counter() - start, epoch + 1 - first),
                 "  ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    return state, progress


def _how_far(epoch: int, epochs: int, epoch_images: int, seconds: float, done: int) -> str:
    """" (30,016 of 160,256 images, 19 %, about 4 min left)" after ``done`` epochs this run."""
    if not epoch_images:
        return ""
    left = seconds / done * (epochs - epoch - 1)
    eta = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
    return (f" ({(epoch + 1) * epoch_images:,} of {epochs * epoch_images:,} images, "
            f"{100 * (epoch + 1) / epochs:.0f} %, about {eta} left)")


def resume(directory: Path, key: str, template: dict, epochs: int) -> tuple[dict, Progress]:
    """The checkpointed state and progress under ``key``, or ``template`` and a fresh start.

    The key leaves out the number of epochs where more epochs simply continue the same training:
    a checkpoint with fewer epochs than ``epochs`` is continued, one with more (``epochs`` was
    lowered) is discarded, since its weights went past what these params ask for.
    """
    loaded = load_checkpoint(directory, key, template, epochs)
    if loaded is None:
        return template, Progress(key)
    state, progress = loaded
    log.info("resuming from the checkpoint after epoch %d of %d in %s", progress.epoch + 1, epochs,
             directory)
    return state, progress


def train_loop(stage: str, trainer, images: np.ndarray, labels: np.ndarray, budget: Budget,
               checkpoints: Path, state: dict, progress: Progress,
               on_epoch_end: Callable[[int, dict], None]) -> tuple[Progress, dict, dict]:
    """The epochs of a custom loop (the GAN's, the diffusion model's) still to run, checkpointed;
    the state then written back into the trainer's networks. Returns the progress, what the run
    trained (`Budget.record`) and the metrics: each loss's last epoch, epochs and images seen.
    Throughput goes to the log, not the metrics: metrics files repeat exactly per seed."""
    start, first_epoch = time.perf_counter(), progress.epoch + 1
    state, progress = run_epochs(
        epochs=budget.epochs, directory=checkpoints, state=state, progress=progress,
        run_epoch=trainer.epoch_runner(images, labels, budget, checkpoints),
        on_epoch_end=on_epoch_end, epoch_images=budget.epoch_images)
    seconds = time.perf_counter() - start
    trained_images = (budget.epochs - first_epoch) * budget.epoch_images
    write_back(trainer.nets, state)
    if trained_images:
        log.info("%s: %.1f images/s over %d images", stage, trained_images / seconds,
                 trained_images)
    trained = budget.record(progress.epoch + 1)
    metrics = {
        **{f"final_{k}": v[-1] for k, v in progress.history.items()},
        "epochs_trained": progress.epoch + 1,
        "images_seen": trained["images_seen"],
    }
    return progress, trained, metrics
