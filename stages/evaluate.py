"""Stage `evaluate`: reconstruction and generation metrics, one metrics file per model.

Generation metrics compare samples with the test split in the evaluator's feature space, next to
two anchors computed the same way: held-out real images (the floor a perfect generator would
reach) and a per-pixel Gaussian fitted to the train split (a trivial generator's ceiling).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np

from latentlab import metrics as m
from latentlab.cli import run_stage
from latentlab.data.downsample import fingerprint, load_split
from latentlab.errors import UserError
from latentlab.models.sampling import gan_samples, pixel_gaussian_samples, vae_samples
from latentlab.params import EvaluateBlock, Params
from latentlab.tracking import track_stage
from latentlab.training.fit import as_float, seed_everything
from stages.evaluator import MODEL_FILE

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models")
OUT = Path("metrics/evaluate")


def _load(path: Path) -> keras.Model:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the stage that makes it (`dvc repro`)")
    return keras.models.load_model(path)


def _sample(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    index = np.sort(rng.choice(len(images), min(n, len(images)), replace=False))
    return images[index]


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

    def __call__(self, images: np.ndarray) -> dict[str, float]:
        b = self.block
        result = m.generation(self.real_features, self._features(images), b.k, b.kid_subsets,
                              b.kid_subset_size, self.seed)
        if self.classifier is not None:
            predicted = self.classifier.predict(images, batch_size=500, verbose=0).argmax(1)
            result.update(m.mode_coverage(predicted, self.n_classes, self.reference))
        n = b.memorization_samples
        result.update(m.memorization(images[:n], self.train, self.real[:n]))
        return result


def run(params: Params, prepared: Path = PREPARED, models: Path = MODELS, out: Path = OUT) -> dict:
    block, seed = params.evaluate, params.base.seed
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    test, test_labels = load_split(prepared, "test")
    if len(test) == 0:
        raise UserError("evaluate needs a test split: set downsample.test_fraction > 0")
    index = np.sort(rng.choice(len(test), min(block.samples, len(test)), replace=False))
    real, real_labels = as_float(test[index]), test_labels[index]
    train = as_float(load_split(prepared, "train")[0])
    val = as_float(load_split(prepared, "val")[0])
    n = len(real)

    encoder = _load(models / "pretrain/encoder.keras")
    decoder = _load(models / "pretrain/decoder.keras")
    evaluator_path = models / "evaluator" / MODEL_FILE
    if evaluator_path.is_file():
        classifier = keras.models.load_model(evaluator_path)
        features = keras.Model(classifier.inputs, classifier.get_layer("features").output)
        space = "evaluator features"
    else:
        classifier, features, space = None, encoder, "autoencoder codings (no labels)"
    judge = Judge(block, features, classifier, real, real_labels, train, seed)

    results: dict[str, dict] = {}
    noisy = np.clip(real + rng.normal(0, block.noise_std, real.shape), 0, 1).astype(np.float32)
    reconstructions = decoder.predict(encoder.predict(real, verbose=0), verbose=0)
    denoised = decoder.predict(encoder.predict(noisy, verbose=0), verbose=0)
    results["autoencoder"] = {**m.reconstruction(real, reconstructions),
                              **m.denoising(real, noisy, denoised)}

    vae_encoder = _load(models / "vae/encoder.keras")
    vae_decoder = _load(models / "vae/decoder.keras")
    mean = vae_encoder.predict(real, verbose=0)[0]
    results["vae"] = {
        **{f"reconstruction_{k}": v
           for k, v in m.reconstruction(real, vae_decoder.predict(mean, verbose=0)).items()},
        **judge(vae_samples(vae_decoder, n, seed)),
    }
    results["gan"] = judge(gan_samples(_load(models / "gan/generator.keras"), n, seed))
    results["anchors"] = {
        "real_holdout": judge(_sample(val, n, rng)),
        "pixel_gaussian": judge(pixel_gaussian_samples(train, n, seed)),
    }
    if classifier is not None:
        results["anchors"]["evaluator_test_accuracy"] = float(
            (classifier.predict(real, verbose=0).argmax(1) == real_labels).mean())
    results["anchors"]["feature_space"] = space

    out.mkdir(parents=True, exist_ok=True)
    for name, values in results.items():
        (out / f"{name}.json").write_text(json.dumps(_rounded(values), indent=2) + "\n")
    log.info("evaluate: %s", json.dumps(_rounded(results)))
    return results


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


def main() -> None:
    run_stage("evaluate", run, lambda p: track_stage(
        "evaluate", p, ["base", "evaluate"], metrics_files=sorted(OUT.glob("*.json")),
        data_hash=fingerprint(PREPARED)))


if __name__ == "__main__":
    main()
