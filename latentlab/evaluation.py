"""Scoring trained models: reconstruction of the autoencoder and the VAE, and generation metrics
of each generator family (`generators`) against a ladder of degraded real images.

Generation metrics compare samples with the test split in the evaluator's feature space (a
supervised classifier's where there are labels, a contrastive encoder's where there are none).
The same metrics of the ladder's rungs (`latentlab.ladder`: held-out real images, noised,
blurred, blobs, colour smears, per-pixel noise) give the scale a generator's score is read on:
the verdict names the rung nearest it. Metrics are called by name through
`metrics.REGISTRY`; ``evaluate.metrics`` picks which generation metrics run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from latentlab import ladder, precision
from latentlab import metrics as m
from latentlab.data.prepared import as_float, load_split
from latentlab.errors import UserError
from latentlab.families import Family
from latentlab.models.card import card_of
from latentlab.params import EvaluateBlock

# What each generation metric is computed from: evaluator features, predicted classes or pixels.
INPUTS = {"frechet_distance": "features", "kid": "features", "precision_recall": "features",
          "mode_coverage": "classes", "memorization": "pixels"}


def load_model(path: Path) -> keras.Model:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the stage that makes it (`dvc repro`)")
    return precision.load_model(path)


class Judge:
    """Scores sets of images against the test split, in one feature space."""

    def __init__(self, block: EvaluateBlock, features: keras.Model, classifier: keras.Model | None,
                 real: np.ndarray, real_labels: np.ndarray, train: np.ndarray, seed: int):
        self.block, self.features, self.classifier, self.seed = block, features, classifier, seed
        self.real, self.train = real, train
        self.real_features = self._features(real)
        self.n_classes = classifier.output_shape[-1] if classifier is not None else 0
        self.reference = np.bincount(real_labels, minlength=self.n_classes) if classifier else None
        self._radii: dict = {}  # the real features' neighbour radii, once for every score
        self._to_train: dict = {}  # the real images' nearest train images, likewise

    def _features(self, images: np.ndarray) -> np.ndarray:
        return self.features.predict(images, batch_size=500, verbose=0).reshape(len(images), -1)

    def _arguments(self, name: str, images: np.ndarray, fake_features) -> tuple[tuple, dict] | None:
        b, n = self.block, self.block.memorization_samples
        if INPUTS[name] == "features":
            options = {"kid": {"subsets": b.kid_subsets, "subset_size": b.kid_subset_size,
                               "seed": self.seed},
                       "precision_recall": {"k": b.k, "cache": self._radii}}.get(name, {})
            return (self.real_features, fake_features), options
        if INPUTS[name] == "classes":
            if self.classifier is None:
                return None  # no labels, no classes to cover
            predicted = self.classifier.predict(images, batch_size=500, verbose=0).argmax(1)
            return (predicted, self.n_classes, self.reference), {}
        return (images[:n], self.train, self.real[:n]), {"cache": self._to_train}

    def __call__(self, images: np.ndarray, spread: bool = False) -> dict[str, float]:
        return self.scores(images, self.block.metrics, spread)

    def scores(self, images: np.ndarray, metrics, spread: bool = False) -> dict[str, float]:
        """The named metrics of ``images`` (those of ``evaluate.metrics`` only); with ``spread``,
        also how far the FD moves with the sample alone (`metrics.fd_spread`: ``fd_spread``)."""
        names = [n for n in self.block.metrics if n in metrics]
        fake_features = (self._features(images)
                         if any(INPUTS[n] == "features" for n in names) else None)
        result: dict[str, float] = {}
        for name in names:
            arguments = self._arguments(name, images, fake_features)
            if arguments is not None:
                args, options = arguments
                result.update(m.REGISTRY[name](*args, **options))
        if spread and "frechet_distance" in result:
            result["fd_spread"] = m.fd_spread(self.real_features, fake_features, seed=self.seed)
        return result


@dataclass
class Setting:
    """What every score is measured against: a seeded sample of the test split and the judge."""

    real: np.ndarray
    real_labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray | None   # None where the judge reads no labels
    judge: Judge
    classifier: keras.Model | None
    space: str                   # the feature space, in words


FEATURES = "features.keras"     # the evaluator stage's feature extractor ...
CLASSIFIER = "evaluator.keras"  # ... and, when it was trained on labels, its classifier


def setting(block: EvaluateBlock, prepared: Path, models: Path, evaluator: Path,
            seed: int) -> Setting:
    """The test sample and the judge; ``evaluator`` is the evaluator stage's folder."""
    rng = np.random.default_rng(seed)
    test, test_labels = load_split(prepared, "test")
    if len(test) == 0:
        raise UserError("evaluate needs a test split: set downsample.test_fraction > 0")
    index = np.sort(rng.choice(len(test), min(block.samples, len(test)), replace=False))
    real, real_labels = as_float(test[index]), test_labels[index]
    train = as_float(load_split(prepared, "train")[0])
    val, val_labels = load_split(prepared, "val")
    features = load_model(evaluator / FEATURES)
    classifier = None
    if (evaluator / CLASSIFIER).is_file():
        classifier = precision.load_model(evaluator / CLASSIFIER)
    else:
        val_labels = None
    judge_file = evaluator / "judge.json"
    kind = json.loads(judge_file.read_text())["features"] if judge_file.is_file() else "supervised"
    space = {"supervised": "the supervised evaluator's features",
             "contrastive": "the contrastive evaluator's features (trained without labels)"}[kind]
    judge = Judge(block, features, classifier, real, real_labels, train, seed)
    return Setting(real, real_labels, train, as_float(val), val_labels, judge, classifier, space)


def evaluate_base(block: EvaluateBlock, prepared: Path, models: Path, evaluator: Path,
                  seed: int) -> dict[str, dict]:
    """The autoencoder's reconstruction and the anchors every generator is judged against:
    {"autoencoder", "anchors"} → values."""
    s = setting(block, prepared, models, evaluator, seed)
    real, n = s.real, len(s.real)
    rng = np.random.default_rng([seed, 1])
    encoder = load_model(models / "pretrain/encoder.keras")
    decoder = load_model(models / "pretrain/decoder.keras")
    results: dict[str, dict] = {}
    noisy = np.clip(real + rng.normal(0, block.noise_std, real.shape), 0, 1).astype(np.float32)
    reconstructions = decoder.predict(encoder.predict(real, verbose=0), verbose=0)
    denoised = decoder.predict(encoder.predict(noisy, verbose=0), verbose=0)
    results["autoencoder"] = {**m.REGISTRY["reconstruction"](real, reconstructions),
                              **m.REGISTRY["denoising"](real, noisy, denoised)}
    # The trivial baseline: every test image rebuilt as the train split's mean image.
    mean_image = np.broadcast_to(s.train.mean(0), real.shape)
    results["autoencoder"]["mean_image_mse"] = m.REGISTRY["reconstruction"](real, mean_image)["mse"]
    rungs = ladder.rungs(s.val, s.val_labels, s.train, n, seed)
    scale = [name for name in ("frechet_distance", "kid", "precision_recall")
             if name in block.metrics]
    scored = {name: s.judge.scores(images, scale, spread=True) for name, images in rungs.items()}

    def anchor(rung: str) -> dict[str, float]:
        """Every metric of a rung: the ladder's, and those the ladder does not read."""
        values = {**scored[rung], **s.judge.scores(rungs[rung], set(block.metrics) - set(scale))}
        return dict(sorted(values.items(), key=lambda item: item[0] == "fd_spread"))

    results["anchors"] = {"real_holdout": anchor("real_holdout"),
                          "pixel_gaussian": anchor("pixel_noise"), "ladder": scored}
    if s.classifier is not None:
        results["anchors"]["evaluator_test_accuracy"] = float(
            (s.classifier.predict(real, verbose=0).argmax(1) == s.real_labels).mean())
    results["anchors"]["feature_space"] = s.space
    results["autoencoder"].update(reconstruction_verdict(results["autoencoder"],
                                                         training(models / "pretrain")))
    return rounded(results)


def evaluate_family(family: Family, block: EvaluateBlock, prepared: Path, models: Path,
                    evaluator: Path, seed: int, base: dict[str, dict],
                    family_block=None) -> dict:
    """One generator family's scores and verdict, against ``base`` (`evaluate_base`'s);
    ``family_block`` is its params block (``train_<name>``; its defaults if None), for what its
    scores add."""
    s = setting(block, prepared, models, evaluator, seed)
    directory = models / family.name
    network = load_model(directory / family.network)
    card = card_of(directory / family.network)
    extra = family.hook("sampling", "extra_metrics")
    block = family_block if family_block is not None else family.block()
    extra = extra(directory, network, card, s.real, s.judge, block) if extra else {}
    samples = family.module("sampling").samples(network, len(s.real), seed, card=card)
    values = {**extra, **s.judge(samples, spread=True)}
    values.update(generation_verdict(family, values, base["anchors"], training(directory)))
    return rounded(values)


def training(model_dir: Path) -> dict:
    """What a training stage wrote of its run beside its models (images seen, split size)."""
    path = model_dir / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _seen(run: dict, key: str) -> str:
    """What more training can do, from what the run wrote of itself (`Budget.record`)."""
    if not run.get("images_seen"):
        return "train longer"
    if run["images_seen"] < run.get("planned_images", 0):
        return (f"early stopping ended it after {run['epochs']} of {run['planned_epochs']} epochs "
                f"({run['images_seen']:,} of {run['planned_images']:,} images), when its val loss "
                f"stopped falling on a {run.get('train_images', 0):,}-image split: a larger "
                f"budget ({key}) will not help; more images or more variety in them would")
    best = run.get("best_epoch")
    if best and best <= run["epochs"] / 2:
        return (f"its val loss was lowest after epoch {best} of {run['epochs']} (the weights kept) "
                f"and rose after it on a {run.get('train_images', 0):,}-image split: a larger "
                f"budget ({key}) will not help; more images or more variety in them would")
    return (f"it saw {run['images_seen']:,} images of a {run.get('train_images', 0):,}-image split;"
            f" train longer (raise {key}) or check the data")


def ladder_position(score: float, rungs: dict[str, float]) -> float:
    """Where ``score`` lies between held-out real images (0) and per-pixel noise (1), on a log
    scale; below 0 or above 1 beyond them."""
    floor, noise = (max(rungs[n], 1e-12) for n in ("real_holdout", "pixel_noise"))
    return float(np.log(max(score, 1e-12) / floor) / np.log(noise / floor))


# The rungs a generator's score is held against: the nearest (on a log scale) names what it makes.
NEAREST = ("real_holdout", *ladder.MILD, *ladder.FAILURES, "pixel_noise")


def generation_verdict(family: Family, values: dict, anchors: dict, run: dict) -> dict:
    """A verdict in words on a generator's score, read on the ladder of degraded real images
    scored in the same feature space (`anchors["ladder"]`): the rung nearest its score on a log
    scale says what it makes: pictures (real images, mildly noised or blurred), blobs and smears,
    or noise. With the position it rests on (`ladder_position`, ↓: 0 = real, 1 = noise). Where
    the judge puts pictures and blobs within a few sampling spreads of each other (a weak feature
    space on a few hundred images), a score between them is not read: no verdict, not a wrong one."""
    metric = next((k for k in ("frechet_distance", "kid") if k in values), None)
    if metric is None:
        return {"verdict": "not judged: frechet_distance and kid are both off"}
    name = {"frechet_distance": "FD", "kid": "KID"}[metric]
    rungs = {rung: scores[metric] for rung, scores in anchors["ladder"].items()}
    # How far each rung's score moves over resamples: FD's only (none in older anchors).
    spreads = {rung: scores.get("fd_spread") for rung, scores in anchors["ladder"].items()
               if metric == "frechet_distance"}
    score, noise, floor = values[metric], rungs["pixel_noise"], rungs["real_holdout"]
    key = family.budget_key
    if not noise > floor or not floor > 0:  # no variety in the test images
        return {"ladder_position": None, "verdict": (
            f"not judged: per-pixel noise's {name} ({noise:.4g}) is no worse than held-out real "
            f"images' ({floor:.4g}), so the test images have no variety to measure against; "
            "check the data (downsample warns of copies)")}
    if not ladder.in_order(rungs):
        order = ", ".join(f"{rung} {rungs[rung]:.4g}" for rung in ladder.NAMES)
        return {"ladder_position": None, "verdict": (
            f"not judged: the evaluator's features do not rank the ladder of degraded real images "
            f"in order ({name}: {order}), so no score in them can be read; train the evaluator "
            "longer (raise evaluator.images_seen) and look at the grid")}
    nearest = min(NEAREST, key=lambda n: abs(np.log(max(score, 1e-12) / rungs[n])))
    near = f"nearest {ladder.WORDS[nearest]} ({rungs[nearest]:.4g})"
    if score >= noise:
        verdict = (f"no better than per-pixel noise ({name} {score:.4g} against the noise's "
                   f"{noise:.4g}): it learned nothing; {_seen(run, key)}")
    elif (unresolved := _unresolved(rungs, spreads, nearest, score,
                                    values.get("fd_spread"))) is not None:
        verdict = (f"not judged between pictures and blobs: {name} {score:.4g} lies {near}, "
                   f"{unresolved}")
    elif nearest in ("real_holdout", *ladder.MILD):
        verdict = f"makes pictures: {name} {score:.4g} lies {near}"
    elif nearest in ladder.FAILURES:
        verdict = (f"makes blobs and smears, not pictures: {name} {score:.4g} lies {near}, "
                   f"further than real images with a little noise or blur "
                   f"({rungs[ladder.furthest_mild(rungs)]:.4g}); {_seen(run, key)}")
    else:
        verdict = (f"barely better than per-pixel noise: {name} {score:.4g} lies {near}; "
                   f"{_seen(run, key)}")
    if values.get("recall", 1.0) < 0.05 and score < noise:
        verdict += (f"; its samples cover few real images (recall {values['recall']:.2f}): "
                    f"{family.low_recall}")
    return {"ladder_position": ladder_position(score, rungs), "verdict": verdict}


def _unresolved(rungs: dict[str, float], spreads: dict[str, float | None], nearest: str,
                score: float, spread: float | None) -> str | None:
    """Why a score nearest a picture or failure rung cannot be read, where the judge puts the
    two kinds of rung within a few sampling spreads of each other (`ladder.resolution`), unless
    the score itself lies that far beyond the pictures (its own ``spread`` over resamples, or
    the rung's without it); None where it can be read (or the rungs have no ``spreads``: KID,
    older anchors)."""
    if nearest == "pixel_noise" or any(spreads.get(rung) is None
                                       for rung in (*ladder.MILD, *ladder.FAILURES)):
        return None
    resolution = ladder.resolution(rungs, spreads)
    mild, failure = ladder.furthest_mild(rungs), ladder.nearest_failure(rungs)
    beyond = (score - rungs[mild]) / np.hypot(spreads[mild], spread or spreads[mild])
    if resolution >= ladder.RESOLVES or (nearest in ladder.FAILURES and beyond >= ladder.RESOLVES):
        return None
    return (f"but on these images the judge puts the nearest rung that is not pictures "
            f"({failure}, {rungs[failure]:.4g}) only {max(resolution, 0):.1f} sampling spreads "
            f"from {ladder.WORDS[mild]} "
            f"({rungs[mild]:.4g}; each moves by ±{spreads[mild]:.2g} and ±{spreads[failure]:.2g} "
            f"over resamples of the images), too close to tell pictures from blobs: look at "
            f"the sample grid; more test and val images (a larger downsample.test_fraction and "
            f"val_fraction) narrow the spread")


# An autoencoder whose MSE is below this fraction of the mean image's rebuilds images.
REBUILDS_FRACTION = 0.5
# Colour reconstructions that keep less than this share of the colours' strength look muted:
# on 80 sprites, 0.67 read as brown and grey silhouettes with a hint of each sprite's colour.
KEEPS_COLOUR = 0.8


def reconstruction_verdict(values: dict, run: dict) -> dict:
    """The autoencoder against the mean image, a reconstruction that learned nothing."""
    if not values["mean_image_mse"] > 0:
        return {"mse_to_mean_image": None, "verdict": (
            "not judged: every test image is the train split's mean image, so there is nothing "
            "to rebuild; check the data (downsample warns of copies)")}
    ratio = values["mse"] / values["mean_image_mse"]
    if ratio >= 1:
        verdict = (f"no better than the mean image (MSE {values['mse']:.4g} against "
                   f"{values['mean_image_mse']:.4g}): it learned nothing; "
                   f"{_seen(run, 'pretrain.images_seen')}")
    elif ratio > REBUILDS_FRACTION:
        verdict = (f"barely better than the mean image (MSE {values['mse']:.4g} is "
                   f"{100 * ratio:.0f} % of its {values['mean_image_mse']:.4g}); "
                   f"{_seen(run, 'pretrain.images_seen')}")
    else:
        verdict = (f"rebuilds images: MSE {values['mse']:.4g} is {100 * ratio:.0f} % of the "
                   f"mean image's {values['mean_image_mse']:.4g}")
    kept = values.get("saturation_kept")
    if kept is not None and kept < KEEPS_COLOUR:
        verdict += (f"; but it mutes the colours: its reconstructions keep {100 * kept:.0f} % of "
                    f"their strength (colour error {values['colour_error']:.3g})")
    return {"mse_to_mean_image": ratio, "verdict": verdict}


def rounded(value):
    """Floats rounded to 6 decimals, all the way down (metrics files stay readable)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value
