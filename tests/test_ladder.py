"""The ladder of degraded real images: made from val and train alone, each rung what it says."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab import ladder


def made_set(n: int = 120, size: int = 28, seed: int = 0):
    """Coloured squares on white, in two kinds (red / blue), at random places and sizes."""
    rng = np.random.default_rng(seed)
    images = np.ones((n, size, size, 3), np.float32)
    labels = rng.integers(0, 2, n)
    for image, label in zip(images, labels):
        side = rng.integers(size // 4, size // 2)
        x, y = rng.integers(0, size - side, 2)
        image[y:y + side, x:x + side] = [0.9, 0.1, 0.1] if label == 0 else [0.1, 0.2, 0.9]
    return images, labels


def test_every_rung_is_made_from_val_and_train_and_repeats_per_seed():
    val, labels = made_set()
    train, _ = made_set(seed=1)
    rungs = ladder.rungs(val, labels, train, 50, seed=3)
    assert list(rungs) == list(ladder.NAMES)
    assert all(r.shape == (50, 28, 28, 3) and r.dtype == np.float32 for r in rungs.values())
    assert all(0 <= r.min() and r.max() <= 1 for r in rungs.values())
    again = ladder.rungs(val, labels, train, 50, seed=3)
    assert all(np.array_equal(rungs[k], again[k]) for k in rungs)
    # Copies are train images; the real rung is val's; one mode is one class.
    flat_train = {im.tobytes() for im in train}
    assert all(im.tobytes() in flat_train for im in rungs["train_copies"])
    assert all(any(np.array_equal(im, v) for v in val) for im in rungs["real_holdout"])
    reds = rungs["one_mode"][..., 0].min(axis=(1, 2)) < 0.5  # a blue square has little red
    assert reds.all() or not reds.any()


def test_each_rung_loses_what_it_says():
    val, labels = made_set()
    train, _ = made_set(seed=1)
    rungs = ladder.rungs(val, None, train, 60, seed=0)
    real = rungs["real_holdout"]

    def edges(images):  # fine detail: the mean absolute difference of neighbouring pixels
        return np.abs(np.diff(images, axis=2)).mean()

    assert edges(real) > edges(rungs["blurred"]) > edges(rungs["blobs"])
    # The smears have the noise's per-pixel spread but little of its fine detail.
    assert edges(rungs["smears"]) < edges(rungs["pixel_noise"]) / 3
    assert np.abs(rungs["noised"] - real).mean() > 0.03  # σ 0.1, clipped at white
    # Scrambled: the same tiles of each real image (7 px at 28 px), most in other places.
    tiles = {name: [{im[a:a + 7, b:b + 7].tobytes() for a in range(0, 28, 7) for b in range(0, 28, 7)}
                    for im in rungs[name]] for name in ("real_holdout", "scrambled")}
    assert tiles["scrambled"] == tiles["real_holdout"]
    assert (rungs["scrambled"] != real).any(axis=(1, 2, 3)).mean() > 0.5
    # Without labels, one mode is the neighbourhood of one image: fewer distinct images.
    assert len({im.tobytes() for im in rungs["one_mode"]}) <= len(val) // 10


def test_the_order_check_and_rank_correlation():
    good = dict(zip(ladder.NAMES, [0.1, 0.2, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 9.0]))
    assert ladder.in_order(good)
    # Mild against mild, failure against failure or noise, one kind against the rest: any order.
    assert ladder.in_order({**good, "noised": 1.0, "blurred": 0.5, "blobs": 20.0, "one_mode": 0.8})
    assert not ladder.in_order({**good, "blurred": 4.0})          # a blur further than blobs
    assert not ladder.in_order({**good, "smears": 0.9})           # smears nearer than a blur
    assert not ladder.in_order({**good, "scrambled": 0.9})        # shuffled tiles nearer too
    assert ladder.in_order({**good, "blurred": 0.05})              # a blur as near as real images
    assert not ladder.in_order({**good, "blobs": 0.05})           # blobs nearer than real images
    assert not ladder.in_order({**good, "one_mode": 0.05})        # one kind nearer than real
    assert ladder.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1
    assert ladder.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1


def test_resolution_counts_the_sampling_spreads_between_pictures_and_failures():
    scores = dict(zip(ladder.NAMES, [0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 3.0, 5.0, 9.0]))
    spreads = dict.fromkeys(ladder.NAMES, 0.5)
    # The furthest mild rung (blurred, 1.0) to the nearest failure (blobs, 3.0): 2 / (0.5·√2).
    assert ladder.resolution(scores, spreads) == pytest.approx(2 / np.hypot(0.5, 0.5))
    assert ladder.resolution(scores, {**spreads, "blurred": 2.0}) < ladder.RESOLVES
    assert ladder.resolution({**scores, "blobs": 0.9}, spreads) < 0      # blobs nearer
    assert ladder.resolution(scores, dict.fromkeys(ladder.NAMES, 0.0)) == float("inf")
