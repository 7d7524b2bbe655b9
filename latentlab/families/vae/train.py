"""The `train@vae` stage's body: a variational autoencoder on the prepared images (labels unused)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from latentlab.data.prepared import fingerprint
from latentlab.families.vae.model import architecture, build_vae
from latentlab.families.vae.training import DENSE_FLOAT32_BECAUSE, VaeTrainer
from latentlab.io import staged_dir, write_json
from latentlab.models.card import ModelCard, write_card
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.training.budget import plan_block
from latentlab.training.loop import best_state, remember_best, resume, run_epochs, write_back
from latentlab.training.stage import copy_frames, save_frame, train_and_val, write_outputs

log = logging.getLogger(__name__)


def run(params: Params, prepared: Path, models_dir: Path, checkpoints: Path,
        metrics_path: Path, history_path: Path, samples_dir: Path) -> dict:
    block, seed = params.train_vae, params.base.seed
    seed_everything(seed)
    train, _, val = train_and_val(prepared, "train_vae", block.max_train_images, seed)
    shape = tuple(train.shape[1:])
    configure(params.base.precision, float32_because=(
        DENSE_FLOAT32_BECAUSE if architecture(block, shape) == "dense" else None))
    vae = build_vae(block, shape, seed)
    trainer = VaeTrainer(vae, block, shape, seed)
    budget = plan_block(block, len(train))
    log.info(budget.describe("train_vae"))
    # Epochs are seeded one by one, so more images seen continue from the checkpoint.
    key = "-".join([params.block_hash("base", "train_vae", exclude=("train_vae.images_seen",)),
                    fingerprint(prepared, ("train", "val"))])
    state, progress = resume(checkpoints, key, trainer.initial_state(), budget.epochs)
    prior = np.random.default_rng(seed).standard_normal((block.grid_size**2, block.latent))
    prior = prior.astype(np.float32)

    def on_epoch_end(epoch: int, state: dict) -> None:
        remember_best(progress, state, "val_loss")
        write_back(trainer.nets, state)
        samples = vae.decoder.predict(prior, verbose=0)
        save_frame((samples * 255).round().astype(np.uint8), checkpoints / "frames", epoch,
                   block.grid_size)

    start = time.perf_counter()
    state, progress = run_epochs(epochs=budget.epochs, directory=checkpoints, state=state,
                                 progress=progress,
                                 run_epoch=trainer.epoch_runner(train, val, budget, checkpoints),
                                 on_epoch_end=on_epoch_end, epoch_images=budget.epoch_images)
    seconds = time.perf_counter() - start
    # The weights of the epoch with the lowest val loss, not the last: on a small split the VAE
    # overfits, and its val loss rises again long before the budget is spent.
    state, best = best_state(progress, state)
    if best != progress.epoch:
        log.info("train_vae: keeping epoch %d's weights (the lowest val loss), not epoch %d's",
                 best + 1, progress.epoch + 1)
    write_back(trainer.nets, state)
    final = trainer.evaluate(state, val)
    trained = {**budget.record(progress.epoch + 1), "best_epoch": best + 1}
    metrics = {
        "val_loss": final["loss"],
        "val_reconstruction_mse": final["reconstruction"],
        "val_kl": final["kl"],
        "epochs_trained": progress.epoch + 1,
        "best_epoch": best + 1,
        "images_seen": trained["images_seen"],
    }
    with staged_dir(models_dir) as staging, staged_dir(samples_dir) as samples:
        vae.encoder.save(staging / "encoder.keras")
        vae.decoder.save(staging / "decoder.keras")
        write_card(staging, ModelCard("vae", "decoder.keras", list(shape), [0.0, 1.0], block.latent,
                                      precision=trained["precision"]))
        save_resolved(params, ["base", "train_vae"], staging / "params.resolved.yaml")
        write_json(staging / "training.json", trained)
        copy_frames(checkpoints / "frames", samples / "progress")
    write_outputs(metrics, metrics_path, progress.history, history_path)
    log.info("train_vae: val loss %.4f, reconstruction MSE %.4f, KL %.2f; "
             "trained for %.1f s", metrics["val_loss"],
             metrics["val_reconstruction_mse"], metrics["val_kl"], seconds)
    return metrics

