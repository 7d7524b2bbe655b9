"""Stage `evaluate`: the autoencoder's reconstruction and the anchors every generator is judged
against (`metrics/evaluate/autoencoder.json`, `anchors.json`); each generator is scored by its
own `score@<name>` stage (what is measured and how: `latentlab.evaluation`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from latentlab.evaluation import evaluate_base
from latentlab.io import write_json
from latentlab.params import Params
from latentlab.precision import configure
from latentlab.seeding import seed_everything
from latentlab.stage_runner import run_stage
from latentlab.tracking import track_stage

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models")
EVALUATOR = Path("models/evaluator")
OUT = Path("metrics/evaluate")
NAMES = ("autoencoder", "anchors")


def run(params: Params, prepared: Path = PREPARED, models: Path = MODELS, out: Path = OUT,
        evaluator: Path = EVALUATOR) -> dict:
    seed_everything(params.base.seed)
    configure(params.base.precision)
    results = evaluate_base(params.evaluate, prepared, models, evaluator, params.base.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, values in results.items():
        write_json(out / f"{name}.json", values)
    log.info("evaluate: %s", json.dumps(results))
    log.info("autoencoder: %s", results["autoencoder"]["verdict"])
    return results


def main() -> None:
    run_stage("evaluate", run, lambda p: track_stage(
        "evaluate", p, ["base", "evaluate"], metrics_files=[OUT / f"{n}.json" for n in NAMES],
        datasets=PREPARED))


if __name__ == "__main__":
    main()
