"""Stage `evaluate`: reconstruction and generation metrics, one metrics file per model
(what is measured and how: `latentlab.evaluation`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from latentlab.evaluation import evaluate_models
from latentlab.params import Params
from latentlab.seeding import seed_everything
from latentlab.stage_runner import run_stage
from latentlab.tracking import track_stage

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models")
EVALUATOR = Path("models/evaluator/evaluator.keras")
OUT = Path("metrics/evaluate")


def run(params: Params, prepared: Path = PREPARED, models: Path = MODELS, out: Path = OUT,
        evaluator: Path = EVALUATOR) -> dict:
    seed_everything(params.base.seed)
    results = evaluate_models(params.evaluate, prepared, models, evaluator, params.base.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, values in results.items():
        (out / f"{name}.json").write_text(json.dumps(values, indent=2) + "\n")
    log.info("evaluate: %s", json.dumps(results))
    for name, values in results.items():
        if "verdict" in values:
            learned_nothing = values["verdict"].startswith("no better")
            log.log(logging.WARNING if learned_nothing else logging.INFO, "%s: %s", name,
                    values["verdict"])
    return results


def main() -> None:
    run_stage("evaluate", run, lambda p: track_stage(
        "evaluate", p, ["base", "evaluate"], metrics_files=sorted(OUT.glob("*.json")),
        datasets=PREPARED))


if __name__ == "__main__":
    main()
