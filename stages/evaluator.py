"""Stage `evaluator`: the judge's feature space, which the generation metrics measure in (no
Inception weights can or need be downloaded), and with labels the classifier behind mode coverage.

With labels (``kind: auto`` or ``supervised``) a CNN is trained on the labeled train split; its
features are the judge's when its test accuracy reaches ``min_accuracy`` (or ``kind:
supervised`` asks for them). Without labels, or from a classifier too weak to trust (a few
hundred images of many classes), or with ``kind: contrastive``: the same CNN trained to tell two
random views of an image from the batch's other images (SimCLR), which never reads a label.
`features.keras` is the feature extractor either way; `judge.json` says which. Its own stage, so
that retraining a generator does not retrain it.
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
CLASSIFIER_FILE = "evaluator.keras"  # with labels: the classes, for mode coverage
JUDGE_FILE = "judge.json"            # which features: supervised or contrastive


def run(params: Params, prepared: Path = PREPARED, models_dir: Path = MODELS,
         metrics_path: Path = METRICS) -> dict:
    block, seed = params.evaluator, params.base.seed
    seed_everything(seed)
    configure(params.base.precision)
    meta = read_meta(prepared)
    x, y = load_split(prepared, "train")
    xv, _ = load_split(prepared, "val")
    xt, yt = load_split(prepared, "test")
    labeled = is_labeled(meta, y, yt) and len(yt) > 0
    if block.kind == "supervised" and not labeled:
        raise UserError(f"evaluator.kind: supervised needs labels, and {meta.get('dataset')} has "
                        "none; set evaluator.kind: auto (or contrastive)")
    metrics: dict = {}
    with staged_dir(models_dir) as staging:
        save_resolved(params, ["base", "evaluator"], staging / "params.resolved.yaml")
        features = None
        if labeled and block.kind != "contrastive":
            budget = plan_block(block, len(x), drop_remainder=False)
            log.info(budget.describe("evaluator (supervised)"))
            model = build_evaluator(tuple(x.shape[1:]), len(meta["class_names"]))
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            model.fit(**fit_inputs(x, budget, seed, labels=y), epochs=budget.epochs, verbose=2)
            metrics["test_accuracy"] = float(model.evaluate(as_float(xt), yt, verbose=0)[1])
            model.save(staging / CLASSIFIER_FILE)
            log.info("evaluator: test accuracy %.4f", metrics["test_accuracy"])
            if block.kind == "supervised" or metrics["test_accuracy"] >= block.min_accuracy:
                features = evaluator_features(model)
            else:
                log.warning("evaluator: a classifier with %.0f %% test accuracy is a weak judge "
                            "(under evaluator.min_accuracy, %.0f %%): the generation metrics "
                            "use a contrastive feature space; the classifier still gives the "
                            "classes", 100 * metrics["test_accuracy"], 100 * block.min_accuracy)
        metrics["features"] = "supervised" if features is not None else "contrastive"
        if features is None:
            budget = plan_block(block, len(x), drop_remainder=True)
            log.info(budget.describe("evaluator (contrastive)"))
            model = ContrastiveJudge(tuple(x.shape[1:]))
            model.compile(keras.optimizers.Adam(1e-3))
            model.fit(**fit_inputs(x, budget, seed, targets=False), epochs=budget.epochs,
                      verbose=2)
            features = model.features
            held_out = as_float(xv if len(xv) else xt)
            metrics["view_retrieval"] = view_retrieval(model, held_out, seed)
            log.info("evaluator: %.0f %% of held-out images find their other view nearest",
                     100 * metrics["view_retrieval"])
        features.save(staging / FEATURES_FILE)
        write_json(staging / JUDGE_FILE, {"features": metrics["features"]})
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
