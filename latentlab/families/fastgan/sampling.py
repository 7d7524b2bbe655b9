"""Drawing from a trained FastGAN: its moving-average generator on Gaussian noise."""

from __future__ import annotations

import keras
import numpy as np


def samples(generator: keras.Model, n: int, seed: int, card=None) -> np.ndarray:
    """Floats in [0, 1]."""
    noise = np.random.default_rng(seed).standard_normal((n, generator.input_shape[-1]))
    images = generator.predict(noise.astype(np.float32), batch_size=250, verbose=0)
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)
