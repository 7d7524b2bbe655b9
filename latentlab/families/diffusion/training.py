"""Diffusion training: one pure step per backend, compiled by `shim`, as the GAN's.

A step noises a batch at uniform random times, trains the denoiser to predict the noise (or v)
with a mean squared error, and moves the EMA copy of its weights towards the new ones; the EMA
copy is what samples. Host-side numpy draws every random input (times, noise, dropped labels),
seeded per epoch, so runs repeat exactly and resume deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from latentlab.families.diffusion import model as d
from latentlab.families.diffusion.params import DiffusionBlock
from latentlab.training import shim
from latentlab.training.budget import Budget
from latentlab.training.loop import (
    EpochLogs,
    Net,
    Progress,
    apply_gradients,
    call,
    epoch_batches,
    initial_state,
)
from latentlab.training.stage import to_signed_range

CHECK_EVERY = 50  # steps between NaN checks

# Why `base.precision: auto` trains the U-Net in float32 (benchmarks/README.md, "Precision").
FLOAT32_BECAUSE = ("the U-Net's step gains little in bfloat16 on a CPU (1.1×), and there its "
                   "bias gradients differ in the last bits from run to run")


def settings(block: DiffusionBlock) -> dict:
    """What sampling needs to know of the model: the model card's ``sampler`` field."""
    return {"prediction": block.prediction, "min_signal": block.min_signal,
            "max_signal": block.max_signal, "steps": block.steps, "eta": block.eta,
            "guidance": block.guidance}


class DiffusionTrainer:
    def __init__(self, denoiser: keras.Model, ema: keras.Model, block: DiffusionBlock,
                 n_classes: int, seed: int):
        self.denoiser, self.ema, self.block, self.n_classes = denoiser, ema, block, n_classes
        self.seed = seed
        ema.set_weights(denoiser.get_weights())
        self.nets = {"denoiser": Net(denoiser, keras.optimizers.Adam(block.learning_rate)),
                     "ema": Net(ema)}
        self.step = shim.jit(self._step)
        self.denoise = shim.jit(self._denoise, updates_state=False)

    def initial_state(self) -> dict:
        return initial_state(self.nets)

    def _inputs(self, noisy, t, labels):
        return [noisy, t, labels] if self.n_classes else [noisy, t]

    def _loss(self, trainable, net_state, batch):
        net_state = {**net_state, "trainable": trainable}
        alpha, sigma = batch["alpha"], batch["sigma"]
        noisy = alpha * batch["images"] + sigma * batch["noise"]
        out, net_state = call(self.denoiser, net_state,
                              self._inputs(noisy, batch["t"], batch.get("labels")), True)
        goal = d.target(self.block.prediction, batch["images"], batch["noise"], alpha, sigma)
        return ops.mean(ops.square(out - goal)), net_state["non_trainable"]

    def _step(self, state, batch):
        net = state["denoiser"]
        (loss, non_trainable), grads = shim.value_and_grad(self._loss)(net["trainable"], net,
                                                                       batch)
        net = apply_gradients(self.nets["denoiser"].optimizer,
                              {**net, "non_trainable": non_trainable}, grads)
        ema = shim.moving_average(state["ema"], net["trainable"], batch["decay"])
        return {"denoiser": net, "ema": ema}, {"loss": loss}

    def _denoise(self, state, noisy, t, labels):
        out, _ = call(self.ema, state["ema"], self._inputs(noisy, t, labels), False)
        return out

    def sampler(self, state: dict) -> Callable:
        """The EMA network on ``state``, for `diffusion.generate`."""
        def denoise(noisy, t, labels):
            return np.asarray(ops.convert_to_numpy(self.denoise(state, noisy, t, labels)))
        return denoise

    def host_batch(self, rng: np.random.Generator, images: np.ndarray,
                   labels: np.ndarray | None, step: int) -> dict:
        b, block = len(images), self.block
        t = rng.random((b, 1), dtype=np.float32)
        alpha, sigma = d.rates(t, block.min_signal, block.max_signal)
        batch = {"images": to_signed_range(images), "t": t,
                 "noise": rng.standard_normal(images.shape, dtype=np.float32),
                 "alpha": alpha.reshape(b, 1, 1, 1), "sigma": sigma.reshape(b, 1, 1, 1),
                 "decay": shim.warmed_decay(block.ema, step)}
        if self.n_classes:
            dropped = rng.random(b) < block.label_dropout  # taught the "no class" too
            batch["labels"] = np.where(dropped, self.n_classes, labels).astype(np.int32)
        return batch

    def epoch_runner(self, images: np.ndarray, labels: np.ndarray, budget: Budget,
                     directory: Path) -> Callable:
        block, steps = self.block, budget.steps_per_epoch

        def run_epoch(epoch: int, state: dict, progress: Progress):
            rng, batches = epoch_batches(self.seed, epoch, len(images), budget, block.batch_size)
            logs = EpochLogs(epoch, directory, progress.epoch, CHECK_EVERY)
            for step, index in enumerate(batches):
                batch = self.host_batch(rng, images[index],
                                        labels[index] if self.n_classes else None,
                                        epoch * steps + step)
                state, step_logs = self.step(state, shim.shard(batch, block.batch_size))
                logs.add(step_logs, step + 1)
            return state, logs.means(steps)

        return run_epoch
