"""Metrics: a registry of functions of arrays, each returning named numbers (dict[str, float]).

Images are float arrays in [0, 1] shaped (N, H, W, C); features are (N, D) arrays from the
evaluator network. Every metric here is checked against cases with a known answer in
tests/test_metrics.py before it is used on models.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
from scipy import linalg
from scipy.ndimage import uniform_filter

log = logging.getLogger(__name__)

REGISTRY: dict[str, Callable[..., dict[str, float]]] = {}


def metric(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
    """Register ``fn`` under its name; `latentlab.evaluation` calls metrics by these names."""
    REGISTRY[fn.__name__] = fn
    return fn


# ---- reconstruction --------------------------------------------------------------------------

def _per_image_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.mean((a.astype(np.float64) - b) ** 2, axis=tuple(range(1, a.ndim)))


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 10 * np.log10(1.0 / np.maximum(_per_image_mse(a, b), 1e-10))


def _ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> np.ndarray:
    """Mean SSIM per image (Wang et al. 2004, uniform window, data range 1), channels averaged."""
    c1, c2 = 0.01**2, 0.03**2
    a, b = a.astype(np.float64), b.astype(np.float64)
    size = (1, window, window, 1)
    mu_a, mu_b = uniform_filter(a, size), uniform_filter(b, size)
    var_a = uniform_filter(a * a, size) - mu_a**2
    var_b = uniform_filter(b * b, size) - mu_b**2
    cov = uniform_filter(a * b, size) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim.mean(axis=(1, 2, 3))


def _chroma(images: np.ndarray) -> np.ndarray:
    """Each pixel's colour less its grey: zero for grey pixels, large for saturated ones."""
    images = images.astype(np.float64)
    return images - images.mean(axis=-1, keepdims=True)


@metric
def reconstruction(originals: np.ndarray, reconstructions: np.ndarray) -> dict[str, float]:
    """MSE, PSNR (dB) and SSIM of reconstructions against their originals, means over images;
    for colour images also the colour error (mean absolute error of each pixel's chroma, its
    colour less its grey) and the saturation kept (the reconstructions' mean chroma magnitude
    over the originals': 1 keeps the colours' strength, 0 turns them grey)."""
    values = {
        "mse": float(_per_image_mse(originals, reconstructions).mean()),
        "psnr": float(_psnr(originals, reconstructions).mean()),
        "ssim": float(_ssim(originals, reconstructions).mean()),
    }
    if originals.shape[-1] == 3:
        real, rebuilt = _chroma(originals), _chroma(reconstructions)
        values["colour_error"] = float(np.abs(real - rebuilt).mean())
        strength = np.abs(real).mean()
        values["saturation_kept"] = float(np.abs(rebuilt).mean() / strength) if strength else None
    return values


@metric
def denoising(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray) -> dict[str, float]:
    """How much closer to the clean images the output is than the noisy input (PSNR gain, dB)."""
    before, after = _psnr(clean, noisy).mean(), _psnr(clean, denoised).mean()
    return {"noisy_psnr": float(before), "denoised_psnr": float(after),
            "denoising_gain_db": float(after - before)}


# ---- generation, in feature space --------------------------------------------------------------

@metric
def frechet_distance(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """‖μr − μf‖² + Tr(Σr + Σf − 2(ΣrΣf)^½) between Gaussians fitted to two feature sets."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root, _ = linalg.sqrtm(cov_r @ cov_f, disp=False)
    if not np.isfinite(root).all():  # near-singular product: regularise, as in TF-GAN
        eps = np.eye(len(mu_r)) * 1e-6
        root = linalg.sqrtm((cov_r + eps) @ (cov_f + eps))
    fd = np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * root.real)
    return {"frechet_distance": float(max(fd, 0.0))}


def fd_spread(real: np.ndarray, fake: np.ndarray, rounds: int = 20, seed: int = 0) -> float:
    """How far the Fréchet distance of two feature sets moves with the sample alone: its
    standard deviation over ``rounds`` resamples of both sets with replacement (the bootstrap)."""
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():  # repeated rows make small sets' covariances singular
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        values = [frechet_distance(real[rng.integers(len(real), size=len(real))],
                                   fake[rng.integers(len(fake), size=len(fake))])
                  ["frechet_distance"] for _ in range(rounds)]
    return float(np.std(values))


@metric
def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 10, subset_size: int = 1000,
        seed: int = 0) -> dict[str, float]:
    """Kernel Inception Distance: the unbiased MMD² with the kernel (x·y / d + 1)³, averaged
    over random subsets (mean and std) of ``subset_size`` points, capped to the smaller set."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        y = fake[rng.choice(len(fake), m, replace=False)].astype(np.float64)
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
        values.append(mmd)
    # With the subset as large as the sets, every subset is the same and kid_std is 0: say so.
    return {"kid": float(np.mean(values)), "kid_std": float(np.std(values)), "kid_subset_size": m}


def _squared_blocks(a: np.ndarray, b: np.ndarray, chunk: int = 256):
    """Squared Euclidean distances from the rows of ``a`` to those of ``b``, ``chunk`` rows of
    ``a`` at a time: (start, block) pairs, each block (≤ chunk, len(b)). Small chunks keep each
    block's temporaries in the CPU's caches (3.7× faster than 2,048 rows at 5,000 × 5,000), and
    the callers reduce each block as it comes, so no len(a) × len(b) matrix is ever held."""
    b = b.astype(np.float64)
    b2 = (b**2).sum(1)
    for start in range(0, len(a), chunk):
        x = a[start:start + chunk].astype(np.float64)
        yield start, np.maximum((x**2).sum(1)[:, None] + b2[None, :] - 2 * x @ b.T, 0)


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Euclidean distances, (len(a), len(b)), computed in row chunks (the chunk changes a
    distance by a unit in the last place at most)."""
    out = np.empty((len(a), len(b)))
    for start, sq in _squared_blocks(a, b, chunk):
        out[start:start + len(sq)] = np.sqrt(sq)
    return out


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each row of ``a`` to its nearest row of ``b``."""
    return np.sqrt(np.concatenate([sq.min(1) for _, sq in _squared_blocks(a, b)]))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's distance to its ``k``-th nearest other row (column 0 is the point itself)."""
    return np.concatenate([np.partition(np.sqrt(sq), k, axis=1)[:, k]
                           for _, sq in _squared_blocks(x, x)])


@metric
def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     cache: dict | None = None) -> dict[str, float]:
    """Kynkäänniemi et al. (2019): precision = share of fakes inside the real manifold (the union
    of balls reaching each real point's k-th nearest real neighbour); recall, the converse.
    ``cache``: a dict the caller keeps for one ``real`` set, so that its radii are computed once
    however many sets are scored against it."""
    usable = min(k, len(real) - 1, len(fake) - 1)  # a point's k-th neighbour must exist
    if usable < 1:
        log.warning("precision/recall: %d real and %d generated images are too few for a "
                    "nearest-neighbour radius; not measured", len(real), len(fake))
        return {"precision": float("nan"), "recall": float("nan")}
    if usable < k:
        log.warning("precision/recall: k=%d capped to %d, as there are only %d real and %d "
                    "generated images", k, usable, len(real), len(fake))
    cache = {} if cache is None else cache
    if usable not in cache:
        cache[usable] = _knn_radii(real, usable)
    real_radii, fake_radii = cache[usable], _knn_radii(fake, usable)
    inside = np.zeros(len(fake), dtype=bool)   # each fake within a real point's ball
    covered = np.zeros(len(real), dtype=bool)  # each real point within a fake's ball
    for start, sq in _squared_blocks(fake, real):  # (fake rows, real)
        cross = np.sqrt(sq)
        inside[start:start + len(cross)] = (cross <= real_radii[None, :]).any(axis=1)
        covered |= (cross <= fake_radii[start:start + len(cross), None]).any(axis=0)
    return {"precision": float(inside.mean()), "recall": float(covered.mean())}


@metric
def mode_coverage(predicted: np.ndarray, n_classes: int, reference: np.ndarray | None = None,
                  min_share: float = 0.01) -> dict[str, float]:
    """How the predicted classes of generated samples spread over the classes.

    ``classes_covered``: classes given to at least ``min_share`` of the samples;
    ``kl_to_reference``: KL(sample class histogram ‖ reference histogram) in nats, the reference
    being the real data's class histogram (uniform when not given); 0 = the same spread.
    """
    counts = np.bincount(predicted, minlength=n_classes).astype(np.float64)
    p = counts / counts.sum()
    q = np.full(n_classes, 1.0 / n_classes) if reference is None else reference / reference.sum()
    nonzero = p > 0
    return {
        "classes_covered": int((p >= min_share).sum()),
        "classes_seen": int(nonzero.sum()),
        "kl_to_reference": float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero]))),
        "largest_class_share": float(p.max()),
    }


@metric
def memorization(samples: np.ndarray, train: np.ndarray, test: np.ndarray,
                 cache: dict | None = None) -> dict[str, float]:
    """Distance (pixels) from each sample to its nearest training image, against the same for
    held-out test images. A ratio well below 1 means samples sit closer to training images than
    new real images do: copies. ``cache``: a dict the caller keeps for one ``train`` and ``test``
    pair, so that the test images' distances are computed once."""
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    to_train = _nearest(flat(samples), flat(train))
    cache = {} if cache is None else cache
    if "test_to_train" not in cache:
        cache["test_to_train"] = _nearest(flat(test), flat(train))
    test_to_train = cache["test_to_train"]
    return {
        "sample_to_train_median": float(np.median(to_train)),
        "test_to_train_median": float(np.median(test_to_train)),
        "memorization_ratio": float(np.median(to_train) / max(np.median(test_to_train), 1e-12)),
        "exact_copies": int((to_train < 1e-6).sum()),
    }
