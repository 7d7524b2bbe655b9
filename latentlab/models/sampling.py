"""Drawing images from trained generators, as floats in [0, 1]: ``(network, n, seed, card)``,
the card (`models.card`) being what the network's stage wrote beside it."""

from __future__ import annotations

import keras
import numpy as np


def vae_samples(decoder: keras.Model, n: int, seed: int, card=None) -> np.ndarray:
    latent = decoder.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n, latent)).astype(np.float32)
    return decoder.predict(z, batch_size=500, verbose=0)


def gan_samples(generator: keras.Model, n: int, seed: int, card=None) -> np.ndarray:
    """Samples of an (optionally conditional) generator; conditional ones get uniform classes."""
    rng = np.random.default_rng(seed)
    inputs = generator.inputs
    noise = rng.standard_normal((n, inputs[0].shape[-1])).astype(np.float32)
    if len(inputs) > 1:
        n_classes = inputs[1].shape[-1]
        noise = [noise, np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, n)]]
    images = generator.predict(noise, batch_size=500, verbose=0)
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


def pixel_gaussian_samples(train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A trivial generator: each pixel drawn independently from a Gaussian fitted to the data."""
    mean, std = train.mean(0), train.std(0)
    draws = np.random.default_rng(seed).standard_normal((n, *train.shape[1:]))
    return np.clip(mean + std * draws, 0.0, 1.0).astype(np.float32)
