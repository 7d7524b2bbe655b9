"""Drawing from a trained GAN generator."""

from __future__ import annotations

import keras
import numpy as np


def samples(generator: keras.Model, n: int, seed: int, card=None) -> np.ndarray:
    """Samples of an (optionally conditional) generator, floats in [0, 1]; conditional ones get
    uniform classes."""
    rng = np.random.default_rng(seed)
    inputs = generator.inputs
    noise = rng.standard_normal((n, inputs[0].shape[-1])).astype(np.float32)
    if len(inputs) > 1:
        n_classes = inputs[1].shape[-1]
        noise = [noise, np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, n)]]
    images = generator.predict(noise, batch_size=500, verbose=0)
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)
