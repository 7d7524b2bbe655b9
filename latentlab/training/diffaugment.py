"""DiffAugment (Zhao et al. 2020): the discriminator sees real and generated images only through
the same random, differentiable augmentations, so it cannot memorise a small training set and the
generator is trained through the augmentation.

Every random draw is made on the host from the loop's seeded numpy generator (`draw`), so runs
repeat exactly; `apply` is plain `keras.ops` arithmetic on images in [-1, 1], differentiable with
respect to the images, the same on every backend. The three parts of the paper's policy:

- colour: brightness ± 0.5, saturation × [0, 2], contrast × [0.5, 1.5];
- translation: a shift of up to 1/8 of the side, zero (mid-grey) filled, as a product with
  shift matrices (rows and columns), so no gather is needed;
- cutout: a square of half the side set to zero, at a random place.
"""

from __future__ import annotations

import numpy as np
from keras import ops

PARTS = ("color", "translation", "cutout")
TRANSLATION, CUTOUT = 1 / 8, 1 / 2


def _shift_matrices(shifts: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size) matrices M with (M @ x)[i] = x[i - shift] inside the image, else 0."""
    i = np.arange(size)
    return (i[None, :, None] - shifts[:, None, None] == i[None, None, :]).astype(np.float32)


def draw(rng: np.random.Generator, n: int, size: int, policy: tuple[str, ...]) -> dict:
    """The random parameters of ``n`` augmentations of ``size``×``size`` images."""
    out: dict[str, np.ndarray] = {}
    if "color" in policy:
        out["brightness"] = rng.uniform(-0.5, 0.5, (n, 1, 1, 1)).astype(np.float32)
        out["saturation"] = rng.uniform(0.0, 2.0, (n, 1, 1, 1)).astype(np.float32)
        out["contrast"] = rng.uniform(0.5, 1.5, (n, 1, 1, 1)).astype(np.float32)
    if "translation" in policy:
        limit = int(size * TRANSLATION + 0.5)
        out["rows"] = _shift_matrices(rng.integers(-limit, limit + 1, n), size)
        out["columns"] = _shift_matrices(rng.integers(-limit, limit + 1, n), size)
    if "cutout" in policy:
        side = int(size * CUTOUT + 0.5)
        top, left = rng.integers(0, size + (1 - side % 2), (2, n)) - side // 2
        i = np.arange(size)
        inside_rows = (i[None, :] >= top[:, None]) & (i[None, :] < top[:, None] + side)
        inside_columns = (i[None, :] >= left[:, None]) & (i[None, :] < left[:, None] + side)
        cut = inside_rows[:, :, None] & inside_columns[:, None, :]
        out["keep"] = (~cut)[..., None].astype(np.float32)
    return out


def apply(x, params: dict):
    """``x`` (n, size, size, channels) in [-1, 1], augmented as ``params`` (from `draw`) say."""
    if "brightness" in params:
        x = x + params["brightness"]
        mean = ops.mean(x, axis=3, keepdims=True)
        x = (x - mean) * params["saturation"] + mean
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * params["contrast"] + mean
    if "rows" in params:
        x = ops.einsum("nij,njkc->nikc", params["rows"], x)
        x = ops.einsum("nkl,nilc->nikc", params["columns"], x)
    if "keep" in params:
        x = x * params["keep"]
    return x
