"""VAE training: reconstruction + β·KL, one pure step compiled by `shim`.

The loss uses the scaling of Géron's chapter-17 notebook: the per-pixel MSE plus the KL
divergence (nats per image) divided by the number of pixels, so its values compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from latentlab.data.prepared import as_float
from latentlab.families.vae.model import Vae
from latentlab.families.vae.params import VaeBlock
from latentlab.training import shim
from latentlab.training.budget import Budget
from latentlab.training.fit import make_optimizer
from latentlab.training.loop import (
    EpochLogs,
    Net,
    Progress,
    apply_gradients,
    call,
    epoch_batches,
    initial_state,
)

EVAL_BATCH = 1000
# Why `base.precision: auto` trains the dense VAE in float32 (benchmarks/README.md, "Precision").
DENSE_FLOAT32_BECAUSE = "the dense VAE's step gains nothing in bfloat16 on a CPU (1.0×)"


class VaeTrainer:
    def __init__(self, vae: Vae, block: VaeBlock, image_shape: tuple[int, int, int], seed: int):
        self.block, self.seed = block, seed
        self.pixels = math.prod(image_shape)
        inputs = keras.Input(shape=image_shape)
        mean, log_var, z = vae.encoder(inputs)
        self.model = keras.Model(inputs, [vae.decoder(z), mean, log_var], name="vae")
        self.nets = {"vae": Net(self.model, make_optimizer(block.optimizer, block.learning_rate))}
        self.train_step = shim.jit(self._train_step)
        self.eval_step = shim.jit(self._eval_step, updates_state=False)

    def initial_state(self) -> dict:
        return initial_state(self.nets)

    def _losses(self, net_state, x, training: bool):
        (reconstruction, mean, log_var), net_state = call(self.model, net_state, x, training)
        mse = ops.mean(ops.square(reconstruction - x))
        kl = ops.mean(-0.5 * ops.sum(1.0 + log_var - ops.exp(log_var) - ops.square(mean), axis=-1))
        total = mse + self.block.beta * kl / self.pixels
        return total, (mse, kl, net_state)

    def _loss(self, trainable, net_state, x):
        total, (mse, kl, net_state) = self._losses({**net_state, "trainable": trainable}, x, True)
        return total, (mse, kl, net_state["non_trainable"])

    def _train_step(self, state, x):
        net = state["vae"]
        (total, (mse, kl, non_trainable)), grads = shim.value_and_grad(self._loss)(
            net["trainable"], net, x)
        net = apply_gradients(self.nets["vae"].optimizer, {**net, "non_trainable": non_trainable}, grads)
        return {"vae": net}, {"loss": total, "reconstruction": mse, "kl": kl}

    def _eval_step(self, state, x):
        total, (mse, kl, _) = self._losses(state["vae"], x, False)
        return {"loss": total, "reconstruction": mse, "kl": kl}

    def evaluate(self, state, images: np.ndarray) -> dict[str, float]:
        """Mean losses over ``images`` (uint8), weighted by batch size."""
        totals, n = {}, 0
        for start in range(0, len(images), EVAL_BATCH):
            x = as_float(images[start:start + EVAL_BATCH])
            logs = self.eval_step(state, x)
            for k, v in logs.items():
                totals[k] = totals.get(k, 0.0) + float(keras.ops.convert_to_numpy(v)) * len(x)
            n += len(x)
        return {k: v / n for k, v in totals.items()}

    def epoch_runner(self, images: np.ndarray, val: np.ndarray, budget: Budget,
                     directory: Path) -> Callable:
        block = self.block

        def run_epoch(epoch: int, state: dict, progress: Progress):
            _, batches = epoch_batches(self.seed, epoch, len(images), budget, block.batch_size)
            epoch_logs = EpochLogs(epoch, directory, progress.epoch)
            for step, index in enumerate(batches):
                batch = shim.shard(as_float(images[index]), block.batch_size)
                state, logs = self.train_step(state, batch)
                epoch_logs.add(logs, step + 1)
            logs = epoch_logs.means(len(batches))
            logs.update({f"val_{k}": v for k, v in self.evaluate(state, val).items()})
            return state, logs

        return run_epoch
