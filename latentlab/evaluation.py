"""Scoring trained models: reconstruction of the autoencoder and the VAE, and generation metrics
of the VAE and the GAN next to two anchors.

Generation metrics compare samples with the test split in one feature space (the evaluator's, or
the autoencoder's codings when there are no labels), next to two anchors computed the same way:
held-out real images (the floor a perfect generator would reach) and a per-pixel Gaussian fitted
to the train split (a trivial generator's ceiling). Metrics are called by name through
`metrics.REGISTRY`; ``evaluate.metrics`` picks which generation metrics run.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from latentlab import metrics as m
from latentlab.data.prepared import as_float, load_split
from latentlab.errors import UserError
from latentlab.models.sampling import gan_samples, pixel_gaussian_samples, vae_samples
from latentlab.params import EvaluateBlock

# What each generation metric is computed from: evaluator features, predicted classes or pixels.
INPUTS = {"frechet_distance": "features", "kid": "features", "precision_recall": "features",
          "mode_coverage": "classes", "memorization": "pixels"}


def load_model(path: Path) -> keras.Model:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the stage that makes it (`dvc repro`)")
    return keras.models.load_model(path)


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
        fake_features = self._features(images)
        result: dict[str, float] = {}
        for name in self.block.metrics:
            arguments = self._arguments(name, images, fake_features)
            if arguments is not None:
                args, options = arguments
                result.update(m.REGISTRY[name](*args, **options))
        return result


def _sample(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    index = np.sort(rng.choice(len(images), min(n, len(images)), replace=False))
    return images[index]


def evaluate_models(block: EvaluateBlock, prepared: Path, models: Path, evaluator: Path,
                    seed: int) -> dict[str, dict]:
    """Every model's metrics, and the anchors: {"autoencoder", "vae", "gan", "anchors"} → values."""
    rng = np.random.default_rng(seed)
    test, test_labels = load_split(prepared, "test")
    if len(test) == 0:
        raise UserError("evaluate needs a test split: set downsample.test_fraction > 0")
    index = np.sort(rng.choice(len(test), min(block.samples, len(test)), replace=False))
    real, real_labels = as_float(test[index]), test_labels[index]
    train = as_float(load_split(prepared, "train")[0])
    val = as_float(load_split(prepared, "val")[0])
    n = len(real)

    encoder = load_model(models / "pretrain/encoder.keras")
    decoder = load_model(models / "pretrain/decoder.keras")
    if evaluator.is_file():
        classifier = keras.models.load_model(evaluator)
        features = evaluator_features(classifier)
        space = "evaluator features"
    else:
        classifier, features, space = None, encoder, "autoencoder codings (no labels)"
    judge = Judge(block, features, classifier, real, real_labels, train, seed)

    results: dict[str, dict] = {}
    noisy = np.clip(real + rng.normal(0, block.noise_std, real.shape), 0, 1).astype(np.float32)
    reconstructions = decoder.predict(encoder.predict(real, verbose=0), verbose=0)
    denoised = decoder.predict(encoder.predict(noisy, verbose=0), verbose=0)
    results["autoencoder"] = {**m.REGISTRY["reconstruction"](real, reconstructions),
                              **m.REGISTRY["denoising"](real, noisy, denoised)}

    vae_encoder = load_model(models / "vae/encoder.keras")
    vae_decoder = load_model(models / "vae/decoder.keras")
    mean = vae_encoder.predict(real, verbose=0)[0]
    vae_reconstruction = m.REGISTRY["reconstruction"](real, vae_decoder.predict(mean, verbose=0))
    results["vae"] = {**{f"reconstruction_{k}": v for k, v in vae_reconstruction.items()},
                      **judge(vae_samples(vae_decoder, n, seed))}
    results["gan"] = judge(gan_samples(load_model(models / "gan/generator.keras"), n, seed))
    results["anchors"] = {
        "real_holdout": judge(_sample(val, n, rng)),
        "pixel_gaussian": judge(pixel_gaussian_samples(train, n, seed)),
    }
    if classifier is not None:
        results["anchors"]["evaluator_test_accuracy"] = float(
            (classifier.predict(real, verbose=0).argmax(1) == real_labels).mean())
    results["anchors"]["feature_space"] = space
    return rounded(results)


def rounded(value):
    """Floats rounded to 6 decimals, all the way down (metrics files stay readable)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value
