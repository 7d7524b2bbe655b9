"""FastGAN training: one pure step, compiled by `shim`, the same on every backend.

The step trains D (with its decoders) on DiffAugment-ed real and fake images: hinge loss on each
logit patch, plus the decoders' mean squared error in rebuilding the whole real image (at low
resolution) and one random quadrant of it from D's own features. The reconstruction's gradient
reaches D and the decoders, never G. Then G is trained through D on augmented fakes (hinge), and
its moving average (the weights that sample) follows it. Every random draw (noise, augmentations,
quadrants) is made on the host from a seeded numpy generator, so runs repeat exactly and resume
deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from latentlab.families.fastgan.model import FastGan, reconstruction_sides
from latentlab.families.fastgan.params import FastGanBlock
from latentlab.training import diffaugment, shim
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

CHECK_EVERY = 50  # steps between NaN checks (each check waits for the device)


def quadrant(x, which):
    """One quadrant of each map in ``x`` (b, s, s, c), chosen by the one-hot rows of ``which``
    (b, 4): top left, top right, bottom left, bottom right."""
    h = x.shape[1] // 2
    quads = ops.stack([x[:, :h, :h], x[:, :h, h:], x[:, h:, :h], x[:, h:, h:]], axis=1)
    return ops.sum(quads * ops.cast(which, quads.dtype)[:, :, None, None, None], axis=1)


def shrink(x, side: int):
    """Images (b, s, s, c) averaged down to ``side`` (s a multiple of it)."""
    b, s, _, c = x.shape
    f = s // side
    if f == 1:
        return x
    return ops.mean(ops.reshape(x, (-1, side, f, side, f, c)), axis=(2, 4))


class FastGanTrainer:
    def __init__(self, gan: FastGan, ema: keras.Model, block: FastGanBlock, seed: int):
        self.gan, self.block, self.seed = gan, block, seed
        ema.set_weights(gan.generator.get_weights())

        def adam():
            return keras.optimizers.Adam(block.learning_rate, beta_1=block.beta_1)

        self.nets = {"generator": Net(gan.generator, adam()),
                     "discriminator": Net(gan.discriminator, adam()),
                     "decoders": Net(gan.decoders, adam()),
                     "ema": Net(ema)}
        self.n_d = len(self.nets["discriminator"].variables()["trainable"])
        self.step = shim.jit(self._step)
        self.sample = shim.jit(self._sample, updates_state=False)

    def initial_state(self) -> dict:
        return initial_state(self.nets)

    def _sample(self, state, noise):
        images, _ = call(self.nets["ema"].model, state["ema"], noise, False)
        return images

    # ---- pure functions of (state, batch) -----------------------------------------------------

    def _d_loss(self, trainable, d_state, dec_state, real, fake, batch):
        d_state = {**d_state, "trainable": trainable[:self.n_d]}
        dec_state = {**dec_state, "trainable": trainable[self.n_d:]}
        real = diffaugment.apply(real, batch["augment_real"])
        fake = diffaugment.apply(fake, batch["augment_fake"])
        (real_logits, small, mid), d_state = call(self.gan.discriminator, d_state, real, True)
        (fake_logits, _, _), d_state = call(self.gan.discriminator, d_state, fake, True)
        hinge = (ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits)))
        which = batch["quadrant"]
        (whole, part), dec_state = call(self.gan.decoders, dec_state,
                                        [small, quadrant(mid, which)], True)
        whole_side, part_side = reconstruction_sides(real.shape[1])
        rebuilt = (ops.mean(ops.square(whole - shrink(real, whole_side)))
                   + ops.mean(ops.square(part - shrink(quadrant(real, which), part_side))))
        loss = hinge + self.block.reconstruction_weight * rebuilt
        return loss, (d_state["non_trainable"], dec_state["non_trainable"], hinge, rebuilt,
                      ops.mean(real_logits), ops.mean(fake_logits))

    def _g_loss(self, g_trainable, g_state, d_state, noise, augment):
        g_state = {**g_state, "trainable": g_trainable}
        fake, g_state = call(self.gan.generator, g_state, noise, True)
        (logits, _, _), _ = call(self.gan.discriminator, d_state,
                                 diffaugment.apply(fake, augment), True)
        return -ops.mean(logits), g_state["non_trainable"]

    def _step(self, state, batch):
        g, d, dec = state["generator"], state["discriminator"], state["decoders"]
        fake, _ = call(self.gan.generator, g, batch["noise_d"], True)
        (loss, (d_nt, dec_nt, hinge, rebuilt, real_score, fake_score)), grads = (
            shim.value_and_grad(self._d_loss)(
                [*d["trainable"], *dec["trainable"]], d, dec, batch["real"],
                ops.stop_gradient(fake), batch))
        d = apply_gradients(self.nets["discriminator"].optimizer, {**d, "non_trainable": d_nt},
                            grads[:self.n_d])
        dec = apply_gradients(self.nets["decoders"].optimizer, {**dec, "non_trainable": dec_nt},
                              grads[self.n_d:])
        (g_loss, g_nt), g_grads = shim.value_and_grad(self._g_loss)(
            g["trainable"], g, d, batch["noise_g"], batch["augment_g"])
        g = apply_gradients(self.nets["generator"].optimizer, {**g, "non_trainable": g_nt},
                            g_grads)
        ema = shim.moving_average(state["ema"], g["trainable"], batch["decay"],
                                  non_trainable=g["non_trainable"])
        logs = {"d_loss": hinge, "reconstruction": rebuilt, "g_loss": g_loss,
                "d_real": real_score, "d_fake": fake_score}
        return {"generator": g, "discriminator": d, "decoders": dec, "ema": ema}, logs

    # ---- host side ----------------------------------------------------------------------------

    def host_batch(self, rng: np.random.Generator, real: np.ndarray, step: int) -> dict:
        """Every random input of one step, drawn from ``rng``."""
        b, block = len(real), self.block
        policy, size = tuple(block.diffaugment), real.shape[1]
        return {
            "real": real,
            "noise_d": rng.standard_normal((b, block.latent), dtype=np.float32),
            "noise_g": rng.standard_normal((b, block.latent), dtype=np.float32),
            "augment_real": diffaugment.draw(rng, b, size, policy),
            "augment_fake": diffaugment.draw(rng, b, size, policy),
            "augment_g": diffaugment.draw(rng, b, size, policy),
            "quadrant": np.eye(4, dtype=np.float32)[rng.integers(0, 4, b)],
            "decay": shim.warmed_decay(block.ema, step),
        }

    def epoch_runner(self, images: np.ndarray, labels: np.ndarray, budget: Budget,
                     directory: Path) -> Callable:
        block, steps = self.block, budget.steps_per_epoch

        def run_epoch(epoch: int, state: dict, progress: Progress):
            rng, batches = epoch_batches(self.seed, epoch, len(images), budget, block.batch_size)
            epoch_logs = EpochLogs(epoch, directory, progress.epoch, CHECK_EVERY)
            for step, index in enumerate(batches):
                batch = self.host_batch(rng, to_signed_range(images[index]),
                                        epoch * steps + step)
                state, logs = self.step(state, shim.shard(batch, block.batch_size))
                epoch_logs.add(logs, step + 1)
            return state, epoch_logs.means(steps)

        return run_epoch
