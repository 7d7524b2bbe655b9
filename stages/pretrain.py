"""Stage `pretrain`: an autoencoder trained on the prepared images alone (labels are never read)."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from latentlab.cli import run_stage
from latentlab.data.downsample import fingerprint
from latentlab.io import staged_dir
from latentlab.models.autoencoders import Autoencoder, build_autoencoder, untie
from latentlab.params import Params, PretrainBlock, save_resolved
from latentlab.tracking import ModelSpec, track_stage
from latentlab.training.fit import as_float, fit_resumable, seed_everything
from latentlab.training.stage import train_and_val, write_outputs

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models/pretrain")
CHECKPOINTS = Path("checkpoints/pretrain")
METRICS = Path("metrics/pretrain.json")
HISTORY = Path("plots/pretrain_history.csv")
NEAR_ZERO = 0.01  # a coding with |value| below this counts as inactive


def compile_mse(model: keras.Model, learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")


def train_layerwise(ae: Autoencoder, block: PretrainBlock, x: np.ndarray, xv: np.ndarray,
                    checkpoints: Path, key: str) -> None:
    """Greedy layer-wise pretraining: each (encoder, decoder) layer pair learns to reconstruct the
    codings of the pairs before it; the full stack is fine-tuned afterwards."""
    reps, val_reps = x.reshape(len(x), -1), xv.reshape(len(xv), -1)
    for i, (enc, dec) in enumerate(ae.layer_pairs):
        inputs = keras.Input(shape=(reps.shape[1],))
        shallow = keras.Model(inputs, dec(enc(inputs)), name=f"layer_{i}")
        compile_mse(shallow, block.learning_rate)
        log.info("layer-wise: training layer %d (%d → %d units)", i, reps.shape[1], enc.units)
        fit_resumable(shallow, reps, reps, directory=checkpoints / f"layer_{i}", key=key,
                             epochs=block.epochs, batch_size=block.batch_size,
                             validation_data=(val_reps, val_reps), patience=block.patience)
        if i + 1 < len(ae.layer_pairs):
            encode = keras.Model(inputs, enc(inputs))
            reps = encode.predict(reps, batch_size=1024, verbose=0)
            val_reps = encode.predict(val_reps, batch_size=1024, verbose=0)


def coding_stats(codings: np.ndarray) -> dict[str, float]:
    return {
        "mean_coding_activation": float(codings.mean()),
        "mean_abs_coding": float(np.abs(codings).mean()),
        "near_zero_coding_fraction": float((np.abs(codings) < NEAR_ZERO).mean()),
    }


def run(params: Params, prepared: Path = PREPARED, models_dir: Path = MODELS,
        checkpoints: Path = CHECKPOINTS, metrics_path: Path = METRICS,
        history_path: Path = HISTORY) -> dict[str, float]:
    block = params.pretrain
    seed_everything(params.base.seed)
    train, _, val = train_and_val(prepared, "pretrain", block.max_train_images, params.base.seed)
    x, xv = as_float(train), as_float(val)
    key = f"{params.block_hash('base', 'pretrain')}-{fingerprint(prepared, ('train', 'val'))}"
    ae = build_autoencoder(block, x.shape[1:])
    log.info("pretrain: %s autoencoder, %d codings, %d train / %d val images, %d parameters",
             block.architecture, block.codings, len(x), len(xv), ae.model.count_params())

    if block.layerwise:
        train_layerwise(ae, block, x, xv, checkpoints, key)
    compile_mse(ae.model, block.learning_rate)
    history = fit_resumable(ae.model, x, x, directory=checkpoints / "full", key=key,
                            epochs=block.epochs, batch_size=block.batch_size,
                            validation_data=(xv, xv), patience=block.patience)

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
        data_hash=fingerprint(PREPARED)))


if __name__ == "__main__":
    main()
