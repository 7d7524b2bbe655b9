"""Drawing from a trained VAE (decoded draws from the prior), and what its scores add: the
reconstruction of the test images."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from latentlab import metrics
from latentlab.precision import load_model


def samples(decoder: keras.Model, n: int, seed: int, card=None) -> np.ndarray:
    """Decoded draws from the prior N(0, I), floats in [0, 1]."""
    latent = decoder.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n, latent)).astype(np.float32)
    return decoder.predict(z, batch_size=500, verbose=0)


def extra_metrics(directory: Path, decoder: keras.Model, card, real: np.ndarray, judge,
                  block) -> dict[str, float]:
    """The VAE's reconstruction of the test images through its encoder's mean."""
    mean = load_model(directory / "encoder.keras").predict(real, verbose=0)[0]
    decoded = decoder.predict(mean, verbose=0)
    return {f"reconstruction_{k}": v
            for k, v in metrics.REGISTRY["reconstruction"](real, decoded).items()}
