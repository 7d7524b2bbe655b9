"""The `train@gan` stage's body: a DCGAN (or dense GAN) with switchable training remedies."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlab.data.prepared import fingerprint
from latentlab.families.gan.model import build_gan
from latentlab.families.gan.training import GanTrainer
from latentlab.io import staged_dir, write_json
from latentlab.models.card import ModelCard, write_card
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.training.budget import plan_block
from latentlab.training.loop import resume, train_loop
from latentlab.training.stage import (
    class_names,
    copy_frames,
    from_signed_range,
    save_frame,
    train_and_val,
    write_outputs,
)

log = logging.getLogger(__name__)


def fixed_inputs(latent: int, grid: int, n_classes: int, seed: int):
    """The noise (and, conditional, the labels: one class per row) behind every epoch's grid."""
    noise = np.random.default_rng(seed).standard_normal((grid * grid, latent)).astype(np.float32)
    if not n_classes:
        return noise, None
    labels = np.repeat(np.arange(grid) % n_classes, grid)
    return noise, np.eye(n_classes, dtype=np.float32)[labels]


def run(params: Params, prepared: Path, models_dir: Path, checkpoints: Path,
        metrics_path: Path, history_path: Path, samples_dir: Path) -> dict:
    block, seed = params.train_gan, params.base.seed
    seed_everything(seed)
    configure(params.base.precision)
    train, labels, _ = train_and_val(prepared, "train_gan", block.max_train_images, seed)
    if len(train) < block.batch_size:  # a tiny dataset: batches drawn from repeated passes
        log.warning("train_gan: a batch of %d is more than the %d train images, so each batch "
                    "repeats some of them", block.batch_size, len(train))
    # a conditional model's classes
    classes = class_names(prepared, labels, "train_gan") if block.conditional else None
    n_classes = len(classes or ())
    shape = tuple(train.shape[1:])
    gan = build_gan(block, shape, n_classes)
    trainer = GanTrainer(gan, block, seed)
    budget = plan_block(block, len(train))
    log.info(budget.describe("train_gan"))
    # Epochs are seeded one by one, so more images seen continue from the checkpoint, unless
    # instance noise decays over the epochs (its schedule depends on their number).
    exclude = () if block.instance_noise else ("train_gan.images_seen",)
    key = "-".join([params.block_hash("base", "train_gan", exclude=exclude),
                    fingerprint(prepared, ("train",))])
    state, progress = resume(checkpoints, key, trainer.initial_state(), budget.epochs)
    noise, noise_labels = fixed_inputs(block.latent, block.grid_size, n_classes, seed)

    def on_epoch_end(epoch: int, state: dict) -> None:
        save_frame(from_signed_range(trainer.sample(state, noise, noise_labels)),
                   checkpoints / "frames", epoch, block.grid_size)

    progress, trained, metrics = train_loop("train_gan", trainer, train, labels, budget,
                                            checkpoints, state, progress, on_epoch_end)
    with staged_dir(models_dir) as staging, staged_dir(samples_dir) as samples:
        gan.generator.save(staging / "generator.keras")
        gan.discriminator.save(staging / "discriminator.keras")
        write_card(staging, ModelCard("gan", "generator.keras", list(shape), [-1.0, 1.0],
                                      block.latent, classes, precision=trained["precision"]))
        save_resolved(params, ["base", "train_gan"], staging / "params.resolved.yaml")
        write_json(staging / "training.json", trained)
        copy_frames(checkpoints / "frames", samples / "progress")
    write_outputs(metrics, metrics_path, progress.history, history_path)
    log.info("train_gan: %s", metrics)
    return metrics

