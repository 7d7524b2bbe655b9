"""The `train@diffusion` stage's body: a U-Net denoiser on a cosine schedule, sampled by DDIM."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlab.data.prepared import fingerprint
from latentlab.families.diffusion import model as d
from latentlab.families.diffusion.training import FLOAT32_BECAUSE, DiffusionTrainer, settings
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


def run(params: Params, prepared: Path, models_dir: Path, checkpoints: Path,
        metrics_path: Path, history_path: Path, samples_dir: Path) -> dict:
    block, seed = params.train_diffusion, params.base.seed
    seed_everything(seed)
    configure(params.base.precision, float32_because=FLOAT32_BECAUSE)
    train, labels, _ = train_and_val(prepared, "train_diffusion", block.max_train_images, seed)
    # a conditional model's classes
    classes = class_names(prepared, labels, "train_diffusion") if block.conditional else None
    n_classes = len(classes or ())
    shape = tuple(int(s) for s in train.shape[1:])
    widths = d.unet_widths(block.widths, shape[0], block.width)
    denoiser = d.build_denoiser(shape, widths, block.blocks, n_classes)
    ema = d.build_denoiser(shape, widths, block.blocks, n_classes)
    trainer = DiffusionTrainer(denoiser, ema, block, n_classes, seed)
    budget = plan_block(block, len(train))
    log.info(budget.describe("train_diffusion"))
    # Sampling settings do not change training: a new steps/eta/guidance keeps the checkpoint.
    exclude = tuple(f"train_diffusion.{k}" for k in ("images_seen", "steps", "eta", "guidance",
                                                      "grid_size", "steps_curve",
                                                      "steps_curve_samples"))
    key = "-".join([params.block_hash("base", "train_diffusion", exclude=exclude),
                    fingerprint(prepared, ("train",))])
    state, progress = resume(checkpoints, key, trainer.initial_state(), budget.epochs)
    g = block.grid_size
    grid_labels = np.repeat(np.arange(g) % n_classes, g) if n_classes else None  # a class a row

    def on_epoch_end(epoch: int, state: dict) -> None:
        images = d.generate(trainer.sampler(state), shape, g * g, seed, settings(block),
                            labels=grid_labels, n_classes=n_classes)
        save_frame(from_signed_range(images), checkpoints / "frames", epoch, g)

    progress, trained, metrics = train_loop("train_diffusion", trainer, train, labels, budget,
                                            checkpoints, state, progress, on_epoch_end)
    with staged_dir(models_dir) as staging, staged_dir(samples_dir) as samples:
        ema.save(staging / "denoiser.keras")  # the EMA weights: what samples
        write_card(staging, ModelCard("diffusion", "denoiser.keras", list(shape), [-1.0, 1.0],
                                      int(np.prod(shape)), classes, settings(block),
                                      trained["precision"]))
        save_resolved(params, ["base", "train_diffusion"], staging / "params.resolved.yaml")
        write_json(staging / "training.json", trained)
        copy_frames(checkpoints / "frames", samples / "progress")
    write_outputs(metrics, metrics_path, progress.history, history_path)
    log.info("train_diffusion: %s", metrics)
    return metrics

