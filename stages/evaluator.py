"""Stage `evaluator`: a CNN trained on the full labeled train split.

It is the domain's feature extractor for the generation metrics (no Inception weights can or
need be downloaded) and the classifier behind mode coverage. Its own stage, so that retraining a
generator does not retrain it. An unlabeled dataset gets no evaluator; `evaluate` then measures
in the autoencoder's coding space and skips the class-based metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from latentlab.data.prepared import as_float, is_labeled, load_split, read_meta
from latentlab.io import staged_dir, write_json
from latentlab.models.classifier import build_evaluator
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
MODEL_FILE = "evaluator.keras"  # `evaluate` reads models/evaluator/evaluator.keras


def run(params: Params, prepared: Path = PREPARED, models_dir: Path = MODELS,
        metrics_path: Path = METRICS) -> dict:
    block = params.evaluator
    seed_everything(params.base.seed)
    configure(params.base.precision)
    meta = read_meta(prepared)
    x, y = load_split(prepared, "train")
    xt, yt = load_split(prepared, "test")
    labeled = is_labeled(meta, y, yt) and len(yt) > 0
    metrics: dict = {"available": labeled}
    with staged_dir(models_dir) as staging:
        save_resolved(params, ["base", "evaluator"], staging / "params.resolved.yaml")
        if labeled:
            model = build_evaluator(tuple(x.shape[1:]), len(meta["class_names"]))
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            budget = plan_block(block, len(x), drop_remainder=False)
            log.info(budget.describe("evaluator"))
            model.fit(**fit_inputs(x, budget, params.base.seed, labels=y), epochs=budget.epochs,
                      verbose=2)
            metrics["test_accuracy"] = float(model.evaluate(as_float(xt), yt, verbose=0)[1])
            model.save(staging / MODEL_FILE)
            log.info("evaluator: test accuracy %.4f", metrics["test_accuracy"])
        else:
            log.warning("evaluator: %s has no labels; generation metrics will use the "
                        "autoencoder's codings and skip mode coverage", meta.get("dataset"))
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(metrics_path, metrics)
    return metrics


def main() -> None:
    run_stage("evaluator", run, lambda p: track_stage(
        "evaluator", p, ["base", "evaluator"], metrics_files=[METRICS],
        models=[ModelSpec(str(MODELS / MODEL_FILE), "evaluator")], datasets=PREPARED))


if __name__ == "__main__":
    main()
