"""Scoring trained models: reconstruction of the autoencoder and the VAE, and generation metrics
of each generator family (`generators`) next to two anchors.

Generation metrics compare samples with the test split in one feature space (the evaluator's, or
the autoencoder's codings when there are no labels), next to two anchors computed the same way:
held-out real images (the floor a perfect generator would reach) and a per-pixel Gaussian fitted
to the train split (a trivial generator's ceiling). Metrics are called by name through
`metrics.REGISTRY`; ``evaluate.metrics`` picks which generation metrics run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from latentlab import metrics as m
from latentlab import precision
from latentlab.data.prepared import as_float, load_split
from latentlab.errors import UserError
from latentlab.generators import Family
from latentlab.models.card import card_of
from latentlab.models.sampling import pixel_gaussian_samples
from latentlab.params import EvaluateBlock

# What each generation metric is computed from: evaluator features, predicted classes or pixels.
INPUTS = {"frechet_distance": "features", "kid": "features", "precision_recall": "features",
          "mode_coverage": "classes", "memorization": "pixels"}


def load_model(path: Path) -> keras.Model:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the stage that makes it (`dvc repro`)")
    return precision.load_model(path)


def evaluator_features(classifier: keras.Model) -> keras.Model:
    """The evaluator's feature extractor: its input up to the layer named "features"."""
    return keras.Model(classifier.inputs, classifier.get_layer("features").output)


class Judge:
    """Scores sets of images against the test split, in one feature space."""

    def __init__(self, block: EvaluateBlock, features: keras.Model, classifier: keras.Model | None,
                 real: np.ndarray, real_labels: np.ndarray, train: np.ndarray, seed: int):
        self.block, self.features, self.classifier, self.seed = block, features, classifier, seed
        self.real, self.train = real, train
        self.real_features = self._features(real)
        self.n_classes = classifier.output_shape[-1] if classifier is not None else 0
        self.reference = np.bincount(real_labels, minlength=self.n_classes) if classifier else None

    def _features(self, images: np.ndarray) -> np.ndarray:
        return self.features.predict(images, batch_size=500, verbose=0).reshape(len(images), -1)

    def _arguments(self, name: str, images: np.ndarray, fake_features) -> tuple[tuple, dict] | None:
        b, n = self.block, self.block.memorization_samples
        if INPUTS[name] == "features":
            options = {"kid": {"subsets": b.kid_subsets, "subset_size": b.kid_subset_size,
                               "seed": self.seed},
                       "precision_recall": {"k": b.k}}.get(name, {})
            return (self.real_features, fake_features), options
        if INPUTS[name] == "classes":
            if self.classifier is None:
                return None  # no labels, no classes to cover
            predicted = self.classifier.predict(images, batch_size=500, verbose=0).argmax(1)
            return (predicted, self.n_classes, self.reference), {}
        return (images[:n], self.train, self.real[:n]), {}

    def __call__(self, images: np.ndarray) -> dict[str, float]:
        return self.scores(images, self.block.metrics)

    def scores(self, images: np.ndarray, metrics) -> dict[str, float]:
        """The named metrics of ``images`` (those of ``evaluate.metrics`` only)."""
        fake_features = self._features(images)
        result: dict[str, float] = {}
        for name in (n for n in self.block.metrics if n in metrics):
            arguments = self._arguments(name, images, fake_features)
            if arguments is not None:
                args, options = arguments
                result.update(m.REGISTRY[name](*args, **options))
        return result


def _sample(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    index = np.sort(rng.choice(len(images), min(n, len(images)), replace=False))
    return images[index]


@dataclass
class Setting:
    """What every score is measured against: a seeded sample of the test split and the judge."""

    real: np.ndarray
    real_labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    judge: Judge
    classifier: keras.Model | None
    space: str                   # the feature space, in words
    rng: np.random.Generator     # continues after the test sample was drawn


def setting(block: EvaluateBlock, prepared: Path, models: Path, evaluator: Path,
            seed: int) -> Setting:
    rng = np.random.default_rng(seed)
    test, test_labels = load_split(prepared, "test")
    if len(test) == 0:
        raise UserError("evaluate needs a test split: set downsample.test_fraction > 0")
    index = np.sort(rng.choice(len(test), min(block.samples, len(test)), replace=False))
    real, real_labels = as_float(test[index]), test_labels[index]
    train = as_float(load_split(prepared, "train")[0])
    val = as_float(load_split(prepared, "val")[0])
    if evaluator.is_file():
        classifier = precision.load_model(evaluator)
        features, space = evaluator_features(classifier), "evaluator features"
    else:
        classifier, space = None, "autoencoder codings (no labels)"
        features = load_model(models / "pretrain/encoder.keras")
    judge = Judge(block, features, classifier, real, real_labels, train, seed)
    return Setting(real, real_labels, train, val, judge, classifier, space, rng)


def evaluate_base(block: EvaluateBlock, prepared: Path, models: Path, evaluator: Path,
                  seed: int) -> dict[str, dict]:
    """The autoencoder's reconstruction and the anchors every generator is judged against:
    {"autoencoder", "anchors"} → values."""
    s = setting(block, prepared, models, evaluator, seed)
    real, rng, n = s.real, s.rng, len(s.real)
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
    results["anchors"] = {
        "real_holdout": s.judge(_sample(s.val, n, rng)),
        "pixel_gaussian": s.judge(pixel_gaussian_samples(s.train, n, seed)),
    }
    if s.classifier is not None:
        results["anchors"]["evaluator_test_accuracy"] = float(
            (s.classifier.predict(real, verbose=0).argmax(1) == s.real_labels).mean())
    results["anchors"]["feature_space"] = s.space
    results["autoencoder"].update(reconstruction_verdict(results["autoencoder"],
                                                         training(models / "pretrain")))
    return rounded(results)


def evaluate_family(family: Family, block: EvaluateBlock, prepared: Path, models: Path,
                    evaluator: Path, seed: int, base: dict[str, dict]) -> dict:
    """One generator family's scores and verdict, against ``base`` (`evaluate_base`'s)."""
    s = setting(block, prepared, models, evaluator, seed)
    directory = models / family.name
    network = load_model(directory / family.network)
    card = card_of(directory / family.network)
    extra = (family.load("extra_metrics")(directory, network, card, s.real, s.judge)
             if family.extra_metrics else {})
    values = {**extra, **s.judge(family.load("sampler")(network, len(s.real), seed, card=card))}
    values.update(generation_verdict(family, values, base["anchors"], training(directory)))
    if s.classifier is None and (base["autoencoder"]["mse_to_mean_image"] or 0) > GOOD_FRACTION:
        values["verdict"] += ("; judged in the codings of an autoencoder that itself learned "
                              "little, so take this verdict with care")
    return rounded(values)


def vae_reconstruction(directory: Path, decoder: keras.Model, card, real: np.ndarray,
                       judge: Judge) -> dict[str, float]:
    """The VAE's reconstruction of the test images through its encoder's mean."""
    mean = load_model(directory / "encoder.keras").predict(real, verbose=0)[0]
    decoded = decoder.predict(mean, verbose=0)
    return {f"reconstruction_{k}": v for k, v in m.REGISTRY["reconstruction"](real, decoded).items()}


def training(model_dir: Path) -> dict:
    """What a training stage wrote of its run beside its models (images seen, split size)."""
    path = model_dir / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _seen(run: dict, key: str) -> str:
    if not run.get("images_seen"):
        return "train longer"
    return (f"it saw {run['images_seen']:,} images of a {run.get('train_images', 0):,}-image split;"
            f" train longer (raise {key}) or check the data")


# A generator whose Fréchet distance is below this fraction of per-pixel noise's is judged to
# make pictures; between it and the noise it is only "better than noise".
GOOD_FRACTION = 0.5


def generation_verdict(family: Family, values: dict, anchors: dict, run: dict) -> dict:
    """A verdict in words on a generator's scores against the floor (held-out real images) and
    the ceiling (per-pixel Gaussian noise), and the ratio it rests on (↓, < 1 beats noise)."""
    metric = next((k for k in ("frechet_distance", "kid") if k in values), None)
    if metric is None:
        return {"verdict": "not judged: frechet_distance and kid are both off"}
    score, noise = values[metric], anchors["pixel_gaussian"][metric]
    floor = anchors["real_holdout"][metric]
    name = {"frechet_distance": "FD", "kid": "KID"}[metric]
    key = family.budget_key
    if not noise > 0:  # no variety in the test images: nothing is far from them
        return {f"{metric}_to_noise": None, "verdict": (
            f"not judged: per-pixel noise's {name} is {noise:.4g}, so the test images have no "
            "variety to measure against; check the data (downsample warns of copies)")}
    ratio = score / noise
    if ratio >= 1:
        verdict = (f"no better than per-pixel noise ({name} {score:.4g} against the noise's "
                   f"{noise:.4g}): it learned nothing; {_seen(run, key)}")
    elif ratio > GOOD_FRACTION:
        verdict = (f"better than per-pixel noise, but not by much ({name} {score:.4g} is "
                   f"{100 * ratio:.0f} % of the noise's {noise:.4g}; held-out real images: "
                   f"{floor:.4g}); {_seen(run, key)}")
    else:
        verdict = (f"makes pictures: {name} {score:.4g} is {100 * ratio:.0f} % of per-pixel "
                   f"noise's {noise:.4g} (held-out real images: {floor:.4g})")
    if values.get("recall", 1.0) < 0.05 and ratio < 1:
        verdict += (f"; its samples cover few real images (recall {values['recall']:.2f}): "
                    f"{family.low_recall}")
    return {f"{metric}_to_noise": ratio, "verdict": verdict}


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
    elif ratio > GOOD_FRACTION:
        verdict = (f"barely better than the mean image (MSE {values['mse']:.4g} is "
                   f"{100 * ratio:.0f} % of its {values['mean_image_mse']:.4g}); "
                   f"{_seen(run, 'pretrain.images_seen')}")
    else:
        verdict = (f"rebuilds images: MSE {values['mse']:.4g} is {100 * ratio:.0f} % of the "
                   f"mean image's {values['mean_image_mse']:.4g}")
    return {"mse_to_mean_image": ratio, "verdict": verdict}


def rounded(value):
    """Floats rounded to 6 decimals, all the way down (metrics files stay readable)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value
