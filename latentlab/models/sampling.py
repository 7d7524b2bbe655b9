"""Trivial generators: the ceiling every trained one is judged against. (Each family draws from
its own network in its package's ``sampling``.)"""

from __future__ import annotations

import numpy as np


def pixel_gaussian_samples(train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A trivial generator: each pixel drawn independently from a Gaussian fitted to the data."""
    mean, std = train.mean(0), train.std(0)
    draws = np.random.default_rng(seed).standard_normal((n, *train.shape[1:]))
    return np.clip(mean + std * draws, 0.0, 1.0).astype(np.float32)
