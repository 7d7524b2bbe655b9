"""Every metric on cases with a known answer, on real data (digits) where it matters."""

from __future__ import annotations

import typing

import keras
import numpy as np
import pytest

from latentlab import metrics
from latentlab.data.prepared import as_float, load_split
from latentlab.evaluation import Judge
from latentlab.params import GenerationMetric
from tests.support.data import make_params


@pytest.fixture(scope="module")
def digits(digits_prepared):
    train, labels = load_split(digits_prepared, "train")
    return as_float(train), labels


def test_reconstruction_of_itself_is_perfect_and_noise_degrades_it(digits):
    x = digits[0][:200]
    same = metrics.reconstruction(x, x)
    assert same["mse"] == 0 and same["ssim"] == pytest.approx(1.0) and same["psnr"] >= 99
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 0.2, x.shape), 0, 1)
    worse = metrics.reconstruction(x, noisy)
    assert 0 < worse["mse"] < 0.04 and worse["ssim"] < 0.9 and 10 < worse["psnr"] < 30
    # PSNR of noise of known variance: 10·log10(1/σ²) ≈ 14 dB for σ = 0.2 before clipping.
    assert metrics.reconstruction(x, x + 0.2)["psnr"] == pytest.approx(10 * np.log10(1 / 0.04))


def test_colour_error_and_saturation_kept_see_colours_turned_grey_not_brightness():
    rng = np.random.default_rng(0)
    colour = rng.uniform(0, 1, (6, 8, 8, 3))
    grey = np.repeat(colour.mean(-1, keepdims=True), 3, axis=-1)
    same = metrics.reconstruction(colour, colour)
    assert same["colour_error"] == 0 and same["saturation_kept"] == pytest.approx(1)
    greyed = metrics.reconstruction(colour, grey)
    assert greyed["saturation_kept"] == 0 and greyed["colour_error"] > 0.1
    half = metrics.reconstruction(colour, grey + 0.5 * (colour - grey))
    assert half["saturation_kept"] == pytest.approx(0.5)
    brighter = metrics.reconstruction(colour, colour * 0 + colour + 0.1)  # same chroma
    assert brighter["colour_error"] == pytest.approx(0) and brighter["mse"] > 0
    assert "colour_error" not in metrics.reconstruction(grey[..., :1], grey[..., :1])


def test_denoising_gain_is_positive_only_when_output_is_closer(digits):
    x = digits[0][:100]
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 0.2, x.shape), 0, 1)
    assert metrics.denoising(x, noisy, x)["denoising_gain_db"] > 50
    assert metrics.denoising(x, noisy, noisy)["denoising_gain_db"] == pytest.approx(0)


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 8))
    b = rng.standard_normal((4000, 8))
    assert metrics.frechet_distance(a, a)["frechet_distance"] == pytest.approx(0, abs=1e-6)
    same = metrics.frechet_distance(a, b)["frechet_distance"]
    assert same < 0.05
    # A shift of 2 in every one of 8 dimensions adds ‖μ‖² = 32.
    shifted = metrics.frechet_distance(a, b + 2.0)["frechet_distance"]
    assert shifted == pytest.approx(32 + same, rel=0.02)
    # Scaling by s changes the covariance term: Tr(I + s²I − 2sI) = 8(1 − s)².
    assert metrics.frechet_distance(a, 3 * b)["frechet_distance"] == pytest.approx(32, rel=0.05)


def test_fd_spread_is_the_sampling_spread_of_the_distance():
    # Unit Gaussians a shift δ apart: FD ≈ ‖x̄ − ȳ + δ‖², whose spread over samples of n points is
    # 2‖δ‖·√(2 / n) (the covariance term adds little): 0.4 at n = 400, half that at 4 × n.
    rng = np.random.default_rng(0)
    spreads = []
    for n in (400, 1600):
        a, b = rng.standard_normal((n, 8)), rng.standard_normal((n, 8)) + 1
        spreads.append(metrics.fd_spread(a, b, rounds=50, seed=1))
        assert spreads[-1] == metrics.fd_spread(a, b, rounds=50, seed=1)  # seeded
        assert spreads[-1] == pytest.approx(2 * np.sqrt(8) * np.sqrt(2 / n), rel=0.3)
    assert spreads[1] == pytest.approx(spreads[0] / 2, rel=0.35)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
    same = metrics.kid(a, b, subsets=5, subset_size=500)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert metrics.kid(a, b + 0.5, subsets=5, subset_size=500)["kid"] > 10 * abs(same["kid"]) + 0.01
    capped = metrics.kid(a[:30], b[:30], subsets=3, subset_size=1000)
    assert capped["kid_subset_size"] == 30 and capped["kid_std"] < 1e-12  # every subset: all of it


def test_precision_recall_caps_k_on_a_tiny_split_and_says_so(caplog):
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 4))  # a 30-image dataset's test split
    with caplog.at_level("WARNING"):
        capped = metrics.precision_recall(real, real + rng.normal(0, 0.01, real.shape), k=3)
    assert capped == {"precision": 1.0, "recall": 1.0}  # k=2: each ball holds its copy
    assert "k=3 capped to 2, as there are only 3 real and 3 generated images" in caplog.text
    alone = metrics.precision_recall(real[:1], real[:1], k=3)
    assert np.isnan(alone["precision"]) and np.isnan(alone["recall"])
    assert "too few for a nearest-neighbour radius; not measured" in caplog.text


def test_precision_recall_known_answers():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((1000, 4))
    assert metrics.precision_recall(real, rng.standard_normal((1000, 4))) == pytest.approx(
        {"precision": 1.0, "recall": 1.0}, abs=0.1)
    far = metrics.precision_recall(real, rng.standard_normal((1000, 4)) + 100)
    assert far == {"precision": 0.0, "recall": 0.0}
    # A generator covering only one half of the data: precise, but recalls about half.
    half = real[real[:, 0] > 0]
    partial = metrics.precision_recall(real, half + rng.normal(0, 0.01, half.shape))
    assert partial["precision"] > 0.9 and 0.3 < partial["recall"] < 0.7


def test_a_judges_caches_give_the_same_numbers_as_a_fresh_computation(digits):
    rng = np.random.default_rng(0)
    real = rng.standard_normal((600, 8))
    radii = {}
    for fake in (rng.standard_normal((600, 8)), real[:300] + 0.5, rng.standard_normal((2, 8))):
        assert metrics.precision_recall(real, fake, cache=radii) == metrics.precision_recall(
            real, fake)
    assert sorted(radii) == [1, 3]  # one radius per k (capped to 1 by two fakes), computed once
    x = digits[0]
    train, test, to_train = x[:1000], x[1000:1300], {}
    for samples in (train[:100], x[1300:1400]):
        assert metrics.memorization(samples, train, test, cache=to_train) == (
            metrics.memorization(samples, train, test))
    assert list(to_train) == ["test_to_train"]
    a, b = rng.standard_normal((700, 16)), rng.standard_normal((500, 16))
    np.testing.assert_allclose(metrics.pairwise_distances(a, b, chunk=64),  # BLAS may round
                               metrics.pairwise_distances(a, b, chunk=4096), rtol=1e-14)


def test_neighbour_metrics_reduced_block_by_block_equal_the_whole_distance_matrix():
    """Precision, recall and nearest distances reduce each block of rows as it comes; over
    sets larger than a block they read as from the whole matrix."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((700, 6)), rng.standard_normal((600, 6)) + 0.8
    k = 3
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    cross = cdist(fake, real)
    expected = {"precision": (cross <= real_radii[None, :]).any(1).mean(),
                "recall": (cross.T <= fake_radii[None, :]).any(1).mean()}
    got = metrics.precision_recall(real, fake, k=k)
    assert 0.1 < got["precision"] < 0.95 and 0.1 < got["recall"] < 0.95  # neither saturated
    assert got == pytest.approx(expected, abs=1 / 600)  # a point on a ball's rim at most
    np.testing.assert_allclose(metrics._nearest(fake, real), cross.min(1), rtol=1e-9)


def test_mode_coverage_collapsed_and_uniform(digits):
    labels = digits[1]
    collapsed = metrics.mode_coverage(np.full(1000, 3), 10)
    assert collapsed["classes_covered"] == 1
    assert collapsed["kl_to_reference"] == pytest.approx(np.log(10))
    real = metrics.mode_coverage(labels, 10, reference=np.bincount(labels, minlength=10))
    assert real["classes_covered"] == 10 and real["kl_to_reference"] == pytest.approx(0, abs=1e-9)


def test_memorization_spots_copies_of_training_images(digits):
    x = digits[0]
    train, test = x[:1000], x[1000:1300]
    copies = metrics.memorization(train[:200], train, test)
    assert copies["exact_copies"] == 200 and copies["memorization_ratio"] < 1e-6
    fresh = metrics.memorization(x[1300:1400], train, test)
    assert fresh["exact_copies"] == 0 and 0.7 < fresh["memorization_ratio"] < 1.3


def test_every_metric_evaluate_can_name_is_registered():
    assert set(typing.get_args(GenerationMetric)) <= set(metrics.REGISTRY)
    assert {"reconstruction", "denoising"} <= set(metrics.REGISTRY)


@pytest.fixture(scope="module")
def judge_inputs(digits):
    x, y = digits
    flat = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten()])
    return flat, x, y


def _judge(judge_inputs, names):
    flat, x, y = judge_inputs
    block = make_params(evaluate={"metrics": names, "kid_subsets": 2, "kid_subset_size": 50,
                                  "memorization_samples": 50}).evaluate
    return Judge(block, flat, None, x[:200], y[:200], x[400:900], seed=0)


def test_the_judge_computes_the_named_metrics_through_the_registry(judge_inputs, monkeypatch):
    x = judge_inputs[1]
    assert set(_judge(judge_inputs, ["kid"])(x[200:400])) == {"kid", "kid_std", "kid_subset_size"}
    everything = _judge(judge_inputs, list(typing.get_args(GenerationMetric)))(x[200:400])
    assert {"frechet_distance", "kid", "precision", "recall", "memorization_ratio"} <= set(everything)
    assert "classes_covered" not in everything  # no classifier: class metrics do not apply

    monkeypatch.setitem(metrics.REGISTRY, "kid", lambda real, fake, **options: {"kid": -1.0})
    assert _judge(judge_inputs, ["kid"])(x[200:400]) == {"kid": -1.0}
