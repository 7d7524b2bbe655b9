"""Drawing from the toy: its network on Gaussian noise."""

from __future__ import annotations

import numpy as np


def samples(generator, n: int, seed: int, card=None) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal((n, generator.input_shape[-1]))
    return generator.predict(noise.astype(np.float32), verbose=0)
