"""Autoencoder training helpers: greedy layer-wise pretraining and statistics of the codings."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from latentlab.models.autoencoders import Autoencoder
from latentlab.params import PretrainBlock
from latentlab.training.budget import Budget, fit_inputs
from latentlab.training.fit import fit_resumable, make_optimizer

log = logging.getLogger(__name__)

NEAR_ZERO = 0.01  # a coding with |value| below this counts as inactive


def compile_mse(model: keras.Model, block: PretrainBlock) -> None:
    model.compile(optimizer=make_optimizer(block.optimizer, block.learning_rate), loss="mse")


def train_layerwise(ae: Autoencoder, block: PretrainBlock, x: np.ndarray, xv: np.ndarray,
                    checkpoints: Path, key: str, budget: Budget, seed: int) -> None:
    """Greedy layer-wise pretraining: each (encoder, decoder) layer pair learns to reconstruct the
    codings of the pairs before it, for ``budget``; the full stack is fine-tuned afterwards."""
    reps, val_reps = x.reshape(len(x), -1), xv.reshape(len(xv), -1)
    for i, (enc, dec) in enumerate(ae.layer_pairs):
        inputs = keras.Input(shape=(reps.shape[1],))
        shallow = keras.Model(inputs, dec(enc(inputs)), name=f"layer_{i}")
        compile_mse(shallow, block)
        log.info("layer-wise: training layer %d (%d → %d units)", i, reps.shape[1], enc.units)
        fit_resumable(shallow, **fit_inputs(reps, budget, seed), directory=checkpoints / f"layer_{i}",
                      key=key, epochs=budget.epochs, validation_data=(val_reps, val_reps),
                      patience=block.patience)
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
