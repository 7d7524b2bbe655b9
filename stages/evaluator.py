"""Stage `evaluator`: the judge's feature space, which the generation metrics measure in (no
Inception weights can or need be downloaded).

``supervised`` (auto, on a labeled dataset): a CNN trained on the labeled train split; it is also
the classifier behind mode coverage. ``contrastive`` (auto, on an unlabeled one): the same CNN
trained without labels to tell two random views of an image from other images (SimCLR); it
never reads a label. Either way `features.keras` is the feature extractor. Its own stage, so that
retraining a generator does not retrain it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from latentlab.data.prepared import as_float, is_labeled, load_split, read_meta
from latentlab.errors import UserError
from latentlab.io import staged_dir, write_json
from latentlab.models.classifier import ContrastiveJudge, build_evaluator, evaluator_features
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.stage_runner import run_stage
from latentlab.tracking import ModelSpec, track_stage
from latentlab.training.budget import fit_inputs, plan_block

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models/evaluator")
METRICS = Path("metrics/evaluator.json")
FEATURES_FILE = "features.keras"     # the feature extractor, read by `evaluate` and `score`
CLASSIFIER_FILE = "evaluator.keras"  # supervised only: the classes, for mode coverage


def run(params: Params, prepared: Path = PREPARED, models_dir: Path = MODELS,
         metrics_path: Path = METRICS) -> dict:
    block = params.evaluator
    seed_everything(params.base.seed)
    configure(params.base.precision)
    meta = read_meta(prepared)
    x, y = load_split(prepared, "train")
    xv, yv = load_split(prepared, "val")
    xt, yt = load_split(prepared, "test")
    labeled = is_labeled(meta, y, yt) and len(yt) > 0
    kind = block.kind if block.kind != "auto" else ("supervised" if labeled else "contrastive")
    if kind == "supervised" and not labeled:
        raise UserError(f"evaluator.kind: supervised needs labels, and {meta.get('dataset')} has "
                        "none; set evaluator.kind: auto (or contrastive)")
    metrics: dict = {"kind": kind}
    budget = plan_block(block, len(x), drop_remainder=kind == "contrastive")
    log.info(budget.describe(f"evaluator ({kind})"))
    with staged_dir(models_dir) as staging:
        save_resolved(params, ["base", "evaluator"], staging / "params.resolved.yaml")
        if kind == "supervised":
            model = build_evaluator(tuple(x.shape[1:]), len(meta["class_names"]))
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            model.fit(**fit_inputs(x, budget, params.base.seed, labels=y), epochs=budget.epochs,
                      verbose=2)
            metrics["test_accuracy"] = float(model.evaluate(as_float(xt), yt, verbose=0)[1])
            model.save(staging / CLASSIFIER_FILE)
            features = evaluator_features(model)
            log.info("evaluator: test accuracy %.4f", metrics["test_accuracy"])
        else:
            model = ContrastiveJudge(tuple(x.shape[1:]))
            model.compile(keras.optimizers.Adam(1e-3))
            model.fit(**fit_inputs(x, budget, params.base.seed), epochs=budget.epochs, verbose=2)
            features = model.features
            held_out = xv if len(xv) else xt
            metrics["view_retrieval"] = view_retrieval(model, as_float(held_out), params.base.seed)
            log.info("evaluator: %.0f %% of held-out images find their other view nearest",
                     100 * metrics["view_retrieval"])
        features.save(staging / FEATURES_FILE)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(metrics_path, metrics)
    return metrics


def view_retrieval(model: ContrastiveJudge, images: np.ndarray, seed: int) -> float:
    """How often a held-out image's nearest neighbour in the features, among the other view of
    every image, is its own other view: the label-free judge's own accuracy (chance: 1 / N)."""
    keras.utils.set_random_seed(seed)
    a = model.features.predict(model.first(images, training=True), verbose=0)
    b = model.features.predict(model.second(images, training=True), verbose=0)
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-9
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-9
    return float(((a @ b.T).argmax(1) == np.arange(len(a))).mean())


def main() -> None:
    run_stage("evaluator", run, lambda p: track_stage(
        "evaluator", p, ["base", "evaluator"], metrics_files=[METRICS],
        models=[ModelSpec(str(MODELS / FEATURES_FILE), "evaluator")], datasets=PREPARED))


if __name__ == "__main__":
    main()
