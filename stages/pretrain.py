"""Stage `pretrain`: an autoencoder trained on the prepared images alone (labels are never read)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlab.data.prepared import as_float, fingerprint
from latentlab.io import staged_dir, write_json
from latentlab.models.autoencoders import (
    TrainingAutoencoder,
    augmenter,
    build_autoencoder,
    untie,
)
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.stage_runner import run_stage
from latentlab.tracking import ModelSpec, track_stage
from latentlab.training.autoencoder import coding_stats, compile_mse, train_layerwise
from latentlab.training.budget import fit_inputs, plan_block
from latentlab.training.fit import fit_resumable, make_optimizer
from latentlab.training.stage import train_and_val, write_outputs

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models/pretrain")
CHECKPOINTS = Path("checkpoints/pretrain")
METRICS = Path("metrics/pretrain.json")
HISTORY = Path("plots/pretrain_history.csv")


def run(params: Params, prepared: Path = PREPARED, models_dir: Path = MODELS,
        checkpoints: Path = CHECKPOINTS, metrics_path: Path = METRICS,
        history_path: Path = HISTORY) -> dict[str, float]:
    block = params.pretrain
    seed_everything(params.base.seed)
    configure(params.base.precision)
    train, _, val = train_and_val(prepared, "pretrain", block.max_train_images, params.base.seed)
    xv = as_float(val)
    budget = plan_block(block, len(train), drop_remainder=False)
    # More images seen continue from the checkpoint; greedy layer-wise training cannot continue
    # (each layer was trained on the codings of the layers before it), so there it starts afresh.
    exclude = () if block.layerwise else ("pretrain.images_seen",)
    key = "-".join([params.block_hash("base", "pretrain", exclude=exclude),
                    fingerprint(prepared, ("train", "val"))])
    ae = build_autoencoder(block, train.shape[1:])
    log.info("pretrain: %s autoencoder, %d codings, %d train / %d val images, %d parameters",
             block.architecture, block.codings, len(train), len(xv), ae.model.count_params())
    log.info(budget.describe("pretrain"))

    if block.layerwise:
        train_layerwise(ae, block, as_float(train), xv, checkpoints, key, budget, params.base.seed)
    model = ae.model
    augment = augmenter(block.augment, block.augment_shift)
    # The training autoencoder computes its loss from the images alone: no targets to feed.
    targets = not (block.contrastive_weight or augment is not None)
    if not targets:
        model = TrainingAutoencoder(ae, block.contrastive_weight, block.temperature, augment)
        model.compile(optimizer=make_optimizer(block.optimizer, block.learning_rate))
    else:
        compile_mse(model, block)
    history = fit_resumable(model, **fit_inputs(train, budget, params.base.seed, targets=targets),
                            directory=checkpoints / "full", key=key, epochs=budget.epochs,
                            validation_data=(xv, xv) if targets else (xv,),
                            patience=block.patience)

    reconstructions = ae.model.predict(xv, batch_size=512, verbose=0)
    codings = ae.encoder.predict(xv, batch_size=512, verbose=0)
    metrics = {
        "val_mse": float(np.mean((reconstructions - xv) ** 2)),
        **coding_stats(codings),
        "epochs_trained": len(history.get("loss", [])),
        "parameters": int(ae.model.count_params()),
    }
    with staged_dir(models_dir) as staging:
        ae.encoder.save(staging / "encoder.keras")
        untie(ae.decoder).save(staging / "decoder.keras")
        save_resolved(params, ["base", "pretrain"], staging / "params.resolved.yaml")
        write_json(staging / "training.json", budget.record(metrics["epochs_trained"]))
    write_outputs(metrics, metrics_path, history, history_path)
    log.info("pretrain: val MSE %.5f, mean coding %.4f, near-zero codings %.1f%%",
             metrics["val_mse"], metrics["mean_coding_activation"],
             100 * metrics["near_zero_coding_fraction"])
    return metrics


def main() -> None:
    run_stage("pretrain", run, lambda p: track_stage(
        "pretrain", p, ["base", "pretrain"], metrics_files=[METRICS], histories=[HISTORY],
        models=[ModelSpec(str(MODELS / "encoder.keras"), "encoder"),
                ModelSpec(str(MODELS / "decoder.keras"), "decoder")],
        datasets=PREPARED))


if __name__ == "__main__":
    main()
