"""A ladder of degraded real images, from held-out real images down to per-pixel noise.

Each rung is a set of images whose distance from the test images is known in kind: a judge
(a feature space with its metrics) is sound where it ranks the rungs in this order, and a
generator's score reads in words by the rungs it falls between ("as close as real images blurred
by a pixel", "worse than blobs"). Rungs are made from the val and train splits, never the test
split the scores are measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from latentlab.models.sampling import pixel_gaussian_samples


@dataclass(frozen=True)
class Rung:
    name: str
    words: str        # what the rung's images are, in words


# Best to worst, roughly: held-out real images; copies of train images (as close as real ones:
# memorization catches them); two mild degradations that leave pictures (which of the two is
# further depends on the data and the feature space); one kind of image only (pictures without
# variety); three failures that are not pictures (scrambled: real tiles in a wrong order, the
# colours and textures of pictures without their shapes; blobs: a blur four times stronger;
# smears: noise shaped into colour fields); per-pixel noise.
RUNGS = (
    Rung("real_holdout", "held-out real images"),
    Rung("train_copies", "copies of train images"),
    Rung("noised", "real images with a little noise"),
    Rung("blurred", "real images blurred by a pixel"),
    Rung("one_mode", "real images of one kind only"),
    Rung("scrambled", "real images cut into 4×4 tiles and shuffled"),
    Rung("blobs", "blobs (real images blurred until only colours and silhouettes are left)"),
    Rung("smears", "colour smears (per-pixel noise, blurred)"),
    Rung("pixel_noise", "per-pixel Gaussian noise"),
)
NAMES = tuple(r.name for r in RUNGS)
MILD = ("noised", "blurred")       # still pictures
FAILURES = ("scrambled", "blobs", "smears")     # not pictures
WORDS = {r.name: r.words for r in RUNGS}


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (N, S, S, C) batch, ``sigma`` in pixels."""
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest")


def _scale(images: np.ndarray) -> float:
    """The blur's radius: a pixel at 64 px, half a pixel at 32 px and below."""
    return max(images.shape[1] / 64, 0.5)


def one_mode(pool: np.ndarray, labels: np.ndarray | None, n: int,
             rng: np.random.Generator) -> np.ndarray:
    """``n`` images of one kind: of the pool's most common class, or without labels, the pool's
    tenth nearest (in pixels) to one image of it, repeated up to ``n``."""
    if labels is not None and len(labels) and labels.min() >= 0:
        members = pool[labels == np.bincount(labels).argmax()]
    else:
        flat = pool.reshape(len(pool), -1)
        centre = flat[rng.integers(len(pool))]
        nearest = np.argsort(((flat - centre) ** 2).sum(1))[: max(2, len(pool) // 10)]
        members = pool[np.sort(nearest)]
    return members[rng.choice(len(members), n, replace=len(members) < n)]


def rungs(val: np.ndarray, val_labels: np.ndarray | None, train: np.ndarray, n: int,
          seed: int) -> dict[str, np.ndarray]:
    """Every rung's ``n`` images (fewer where val is smaller), in `RUNGS` order, from float
    images in [0, 1]. The same ``seed`` gives the same rungs."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(val), min(n, len(val)), replace=False))
    real = val[take]
    k = len(real)
    scale = _scale(real)
    makers: dict[str, Callable[[], np.ndarray]] = {
        "real_holdout": lambda: real,
        "train_copies": lambda: train[np.sort(rng.choice(len(train), k, replace=len(train) < k))],
        "noised": lambda: np.clip(real + rng.normal(0, 0.1, real.shape), 0, 1),
        "blurred": lambda: blur(real, scale),
        "one_mode": lambda: one_mode(val, val_labels, k, rng),
        "scrambled": lambda: scrambled(real, TILES, np.random.default_rng([seed, 1])),
        "blobs": lambda: blur(real, 4 * scale),
        "smears": lambda: _smears(train, k, scale, rng),
        "pixel_noise": lambda: pixel_gaussian_samples(train, k, seed),
    }
    return {name: makers[name]().astype(np.float32) for name in NAMES}


TILES = 4  # the scrambled rung's tiles per side: a quarter of the side each


def scrambled(images: np.ndarray, tiles: int, rng: np.random.Generator) -> np.ndarray:
    """Each image cut into ``tiles`` × ``tiles`` tiles put back in a random order of its own
    (a side that ``tiles`` does not divide keeps its last rows and columns in place)."""
    n, side = len(images), images.shape[1]
    t = side // tiles
    grid = images[:, :t * tiles, :t * tiles]
    cut = grid.reshape(n, tiles, t, tiles, t, -1).swapaxes(2, 3).reshape(n, tiles * tiles, t, t, -1)
    order = np.argsort(rng.random((n, tiles * tiles)), axis=1)
    shuffled = np.take_along_axis(cut, order[:, :, None, None, None], axis=1)
    out = images.copy()
    out[:, :t * tiles, :t * tiles] = (shuffled.reshape(n, tiles, tiles, t, t, -1).swapaxes(2, 3)
                                      .reshape(grid.shape))
    return out


def _smears(train: np.ndarray, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel noise (each pixel drawn from the train split's mean and spread there), blurred
    into colour fields and stretched back to the noise's contrast."""
    noise = pixel_gaussian_samples(train, n, int(rng.integers(2**31)))
    smooth = blur(noise, 4 * scale)
    mean = train.mean(0)
    spread = smooth.std(0) + 1e-6
    return np.clip(mean + (smooth - smooth.mean(0)) / spread * train.std(0), 0, 1)


def furthest_mild(scores: dict[str, float]) -> str:
    """The mild rung (still pictures) that ``scores`` (↓ better) put furthest away."""
    return max(MILD, key=scores.__getitem__)


def nearest_failure(scores: dict[str, float]) -> str:
    """The failure rung (not pictures) that ``scores`` (↓ better) put nearest."""
    return min(FAILURES, key=scores.__getitem__)


def in_order(scores: dict[str, float]) -> bool:
    """Whether ``scores`` (↓ better) rank the ladder as a judge must: each mild degradation nearer
    than each failure, and held-out real images nearer than the failures, one kind only and the
    noise. Held-out real against mild rungs, mild against mild, failure against failure or noise:
    either order (on a few dozen test images a blur of a pixel can score as close as real ones)."""
    mild = scores[furthest_mild(scores)]
    failures = scores[nearest_failure(scores)]
    real = scores["real_holdout"]
    return mild < failures and real < min(failures, scores["pixel_noise"], scores["one_mode"])


# A score between pictures and failures is read only where the ladder puts them this many
# sampling spreads apart: a gap that a resample of the images closes about one time in forty.
RESOLVES = 2.0


def resolution(scores: dict[str, float], spreads: dict[str, float]) -> float:
    """How many sampling spreads apart the judge puts pictures and failures: the gap from the
    furthest mild rung to the nearest failure, over the spread of that difference (each rung's
    own spread over resamples, `metrics.fd_spread`, added in quadrature)."""
    mild, failure = furthest_mild(scores), nearest_failure(scores)
    spread = float(np.hypot(spreads[mild], spreads[failure]))
    gap = scores[failure] - scores[mild]
    return gap / spread if spread > 0 else float("inf") if gap > 0 else 0.0


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of two equally long lists (no ties expected)."""
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])
