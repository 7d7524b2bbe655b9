"""GAN training: one pure step per backend-neutral design, compiled by `shim`.

Each step trains the discriminator (``d_steps`` times) on real vs generated images, then the
generator through the frozen discriminator: only the network being trained is differentiated
and updated. Host-side numpy supplies every random draw (noise, label flips, instance noise,
interpolation weights), seeded per epoch, so runs repeat exactly and resume deterministically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from latentlab.families.gan.model import Gan
from latentlab.families.gan.params import GanBlock
from latentlab.families.gan.replay import ImagePool
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

log = logging.getLogger(__name__)

CHECK_EVERY = 50  # steps between NaN checks (each check waits for the device)


class GanTrainer:
    def __init__(self, gan: Gan, block: GanBlock, seed: int):
        self.gan, self.block, self.seed = gan, block, seed
        self.nets = {
            "generator": Net(gan.generator, keras.optimizers.Adam(block.learning_rate, beta_1=block.beta_1)),
            "discriminator": Net(gan.discriminator,
                                 keras.optimizers.Adam(block.learning_rate, beta_1=block.beta_1)),
        }
        self.fused_step = shim.jit(self.pure_step)
        self.generate = shim.jit(self._generate, updates_state=False)
        self.d_update = shim.jit(self._d_update)
        self.g_update = shim.jit(self._g_update)
        self.sample = shim.jit(self._sample, updates_state=False)

    def initial_state(self) -> dict:
        return initial_state(self.nets)

    # ---- pure functions of (state, batch) -----------------------------------------------------

    def _inputs(self, images, labels):
        return [images, labels] if self.gan.n_classes else images

    def _generate(self, state, noise, labels):
        fake, _ = call(self.gan.generator, state["generator"], self._inputs(noise, labels), True)
        return fake

    def _sample(self, state, noise, labels):
        fake, _ = call(self.gan.generator, state["generator"], self._inputs(noise, labels), False)
        return fake

    def _d_loss(self, d_trainable, d_state, batch, fake, fake_labels):
        d_state = {**d_state, "trainable": d_trainable}
        real = batch["real"]
        if "noise_real" in batch:  # instance noise, its scale set per epoch
            real = real + batch["noise_real"]
            fake = fake + batch["noise_fake"]
        both = ops.concatenate([real, fake])
        if "augment_d" in batch:  # DiffAugment: real and fake alike
            both = diffaugment.apply(both, batch["augment_d"])
        n = len(real)
        if self.block.minibatch == "none":
            # One pass over real and fake together: larger, faster kernels.
            labels = None
            if self.gan.n_classes:
                labels = ops.concatenate([batch["real_labels"], fake_labels])
            logits, d_state = call(self.gan.discriminator, d_state, self._inputs(both, labels),
                                   True)
            real_logit, fake_logit = logits[:n], logits[n:]
        else:  # minibatch features must see real and fake batches apart
            real_logit, d_state = call(self.gan.discriminator, d_state,
                                       self._inputs(both[:n], batch.get("real_labels")), True)
            fake_logit, d_state = call(self.gan.discriminator, d_state,
                                       self._inputs(both[n:], fake_labels), True)
        if self.block.loss == "wgan_gp":
            eps = batch["eps"]
            mixed = eps * batch["real"] + (1.0 - eps) * fake

            def critic(x):
                return call(self.gan.discriminator, d_state,
                            self._inputs(x, batch.get("real_labels")), True)[0]

            grads = shim.input_gradient(critic, mixed)
            norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)
            penalty = ops.mean(ops.square(norms - 1.0))
            loss = ops.mean(fake_logit) - ops.mean(real_logit) + self.block.gp_weight * penalty
        else:
            loss = (ops.mean(ops.binary_crossentropy(batch["target_real"], real_logit, from_logits=True))
                    + ops.mean(ops.binary_crossentropy(batch["target_fake"], fake_logit, from_logits=True)))
        return loss, (d_state["non_trainable"], ops.mean(real_logit), ops.mean(fake_logit))

    def _d_update(self, state, batch, fake, fake_labels):
        d_state = state["discriminator"]
        (loss, (non_trainable, real_score, fake_score)), grads = shim.value_and_grad(self._d_loss)(
            d_state["trainable"], d_state, batch, fake, fake_labels)
        d_state = apply_gradients(self.nets["discriminator"].optimizer,
                                  {**d_state, "non_trainable": non_trainable}, grads)
        logs = {"d_loss": loss, "d_real": real_score, "d_fake": fake_score}
        return {**state, "discriminator": d_state}, logs

    def _g_loss(self, g_trainable, g_state, d_state, noise, labels, augment):
        g_state = {**g_state, "trainable": g_trainable}
        fake, g_state = call(self.gan.generator, g_state, self._inputs(noise, labels), True)
        if augment:  # G is trained through the augmentation D sees
            fake = diffaugment.apply(fake, augment)
        # D runs in training mode but its values are not differentiated nor updated here.
        logit, _ = call(self.gan.discriminator, d_state, self._inputs(fake, labels), True)
        if self.block.loss == "wgan_gp":
            loss = -ops.mean(logit)
        else:  # non-saturating: maximise log D(G(z))
            loss = ops.mean(ops.binary_crossentropy(ops.ones_like(logit), logit, from_logits=True))
        return loss, g_state["non_trainable"]

    def _g_update(self, state, noise, labels, augment):
        g_state = state["generator"]
        (loss, non_trainable), grads = shim.value_and_grad(self._g_loss)(
            g_state["trainable"], g_state, state["discriminator"], noise, labels, augment)
        g_state = apply_gradients(self.nets["generator"].optimizer,
                                  {**g_state, "non_trainable": non_trainable}, grads)
        return {**state, "generator": g_state}, loss

    def pure_step(self, state, batch):
        """One D-then-G update, uncompiled: (state, batch) → (state, logs); `fused_step` is it
        compiled (a benchmark may compile several in one call)."""
        fake_labels = batch.get("fake_labels_d")
        for i in range(self.block.d_steps):
            labels = fake_labels[i] if fake_labels is not None else None
            fake = self._generate(state, batch["noise_d"][i], labels)
            state, logs = self._d_update(state, batch, fake, labels)
        state, g_loss = self._g_update(state, batch["noise_g"], batch.get("fake_labels_g"),
                                       batch.get("augment_g", {}))
        return state, {**logs, "g_loss": g_loss}

    # ---- host side ----------------------------------------------------------------------------

    def host_batch(self, rng: np.random.Generator, real: np.ndarray, labels: np.ndarray | None,
                   noise_std: float) -> dict:
        """Every random input of one step, drawn from ``rng``."""
        b, block, n = len(real), self.block, self.gan.n_classes
        batch = {
            "real": real,
            "noise_d": rng.standard_normal((block.d_steps, b, block.latent), dtype=np.float32),
            "noise_g": rng.standard_normal((b, block.latent), dtype=np.float32),
        }
        if n:
            eye = np.eye(n, dtype=np.float32)
            batch["real_labels"] = eye[labels]
            batch["fake_labels_d"] = eye[rng.integers(0, n, (block.d_steps, b))]
            batch["fake_labels_g"] = eye[rng.integers(0, n, b)]
        if block.loss == "wgan_gp":
            batch["eps"] = rng.random((b, 1, 1, 1), dtype=np.float32)
        else:
            target_real = np.full((b, 1), 1.0 - block.label_smoothing, dtype=np.float32)
            target_fake = np.zeros((b, 1), dtype=np.float32)
            if block.label_flip:
                flip = rng.random((b, 1)) < block.label_flip
                target_real[flip] = 0.0
                flip = rng.random((b, 1)) < block.label_flip
                target_fake[flip] = 1.0 - block.label_smoothing
            batch["target_real"], batch["target_fake"] = target_real, target_fake
        if noise_std > 0:
            batch["noise_real"] = noise_std * rng.standard_normal(real.shape, dtype=np.float32)
            batch["noise_fake"] = noise_std * rng.standard_normal(real.shape, dtype=np.float32)
        if block.diffaugment:  # D's real and fake halves, then G's fakes
            policy, size = tuple(block.diffaugment), real.shape[1]
            batch["augment_d"] = diffaugment.draw(rng, 2 * b, size, policy)
            batch["augment_g"] = diffaugment.draw(rng, b, size, policy)
        return batch

    def replay_step(self, state, batch, pool: ImagePool, rng: np.random.Generator):
        """A step with experience replay: fakes go through the pool before D sees them."""
        n = self.gan.n_classes
        for i in range(self.block.d_steps):
            labels_oh = batch["fake_labels_d"][i] if n else None
            fake = from_device(self.generate(state, batch["noise_d"][i], labels_oh))
            labels = labels_oh.argmax(axis=1) if n else np.zeros(len(fake), dtype=np.int64)
            mixed, mixed_labels = pool.query(fake, labels, rng)
            mixed_oh = np.eye(n, dtype=np.float32)[mixed_labels] if n else None
            state, logs = self.d_update(state, batch, mixed, mixed_oh)
        state, g_loss = self.g_update(state, batch["noise_g"], batch.get("fake_labels_g"),
                                      batch.get("augment_g", {}))
        return state, {**logs, "g_loss": g_loss}

    def epoch_runner(self, images: np.ndarray, labels: np.ndarray, budget: Budget,
                     directory: Path) -> Callable:
        """``run_epoch`` for `loop.run_epochs`: full batches in a seeded shuffled order, the
        split repeated within an epoch where ``budget`` says so."""
        block = self.block

        def run_epoch(epoch: int, state: dict, progress: Progress):
            rng, batches = epoch_batches(self.seed, epoch, len(images), budget, block.batch_size)
            noise_std = block.instance_noise * (1.0 - epoch / budget.epochs)  # linear decay
            pool = ImagePool.restore(block.replay_pool_size, progress.extra) if block.replay else None
            epoch_logs = EpochLogs(epoch, directory, progress.epoch, CHECK_EVERY)
            for step, index in enumerate(batches):
                real = to_signed_range(images[index])
                batch = self.host_batch(rng, real, labels[index] if self.gan.n_classes else None,
                                        noise_std)
                batch = shim.shard(batch, block.batch_size)
                if pool is not None:
                    state, logs = self.replay_step(state, batch, pool, rng)
                else:
                    state, logs = self.fused_step(state, batch)
                epoch_logs.add(logs, step + 1)
            if pool is not None:
                progress.extra = pool.state()
            return state, epoch_logs.means(len(batches))

        return run_epoch


def from_device(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))
