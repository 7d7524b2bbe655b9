"""The `train@fastgan` stage's body: the few-shot GAN, its moving-average generator saved."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlab.data.prepared import fingerprint
from latentlab.families.fastgan.model import build_fastgan, build_generator
from latentlab.families.fastgan.training import FastGanTrainer
from latentlab.io import staged_dir, write_json
from latentlab.models.card import ModelCard, write_card
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.training.budget import plan_block
from latentlab.training.loop import resume, train_loop
from latentlab.training.stage import (
    copy_frames,
    from_signed_range,
    save_frame,
    train_and_val,
    write_outputs,
)

log = logging.getLogger(__name__)


def run(params: Params, prepared: Path, models_dir: Path, checkpoints: Path,
        metrics_path: Path, history_path: Path, samples_dir: Path) -> dict:
    block, seed = params.train_fastgan, params.base.seed
    seed_everything(seed)
    configure(params.base.precision)
    train, labels, _ = train_and_val(prepared, "train_fastgan", block.max_train_images, seed)
    if len(train) < block.batch_size:
        log.warning("train_fastgan: a batch of %d is more than the %d train images, so each "
                    "batch repeats some of them", block.batch_size, len(train))
    shape = tuple(int(s) for s in train.shape[1:])
    gan = build_fastgan(block, shape)
    ema = build_generator(block, shape)  # the moving average of G: what samples
    trainer = FastGanTrainer(gan, ema, block, seed)
    budget = plan_block(block, len(train))
    log.info(budget.describe("train_fastgan"))
    # Epochs are seeded one by one, so more images seen continue from the checkpoint.
    key = "-".join([params.block_hash("base", "train_fastgan",
                                      exclude=("train_fastgan.images_seen",)),
                    fingerprint(prepared, ("train",))])
    state, progress = resume(checkpoints, key, trainer.initial_state(), budget.epochs)
    noise = np.random.default_rng(seed).standard_normal(
        (block.grid_size ** 2, block.latent)).astype(np.float32)

    def on_epoch_end(epoch: int, state: dict) -> None:
        save_frame(from_signed_range(trainer.sample(state, noise)), checkpoints / "frames",
                   epoch, block.grid_size)

    progress, trained, metrics = train_loop("train_fastgan", trainer, train, labels, budget,
                                            checkpoints, state, progress, on_epoch_end)
    with staged_dir(models_dir) as staging, staged_dir(samples_dir) as samples:
        ema.save(staging / "generator.keras")
        write_card(staging, ModelCard("fastgan", "generator.keras", list(shape), [-1.0, 1.0],
                                      block.latent, precision=trained["precision"]))
        save_resolved(params, ["base", "train_fastgan"], staging / "params.resolved.yaml")
        write_json(staging / "training.json", trained)
        copy_frames(checkpoints / "frames", samples / "progress")
    write_outputs(metrics, metrics_path, progress.history, history_path)
    log.info("train_fastgan: %s", metrics)
    return metrics
