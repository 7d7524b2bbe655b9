"""Stage `score@<family>`: one generator family's generation metrics and verdict, against the
anchors `evaluate` wrote (`python -m stages.score gan`)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from latentlab.errors import UserError
from latentlab.evaluation import evaluate_family
from latentlab.families import FAMILIES
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


def family_name(argv: list[str]) -> str:
    if len(argv) != 1 or argv[0] not in FAMILIES:
        raise UserError(f"give one generator family to score: {', '.join(FAMILIES)} "
                        f"(got {' '.join(argv) or 'none'})")
    return argv[0]


def run(params: Params, name: str, prepared: Path = PREPARED, models: Path = MODELS,
        out: Path = OUT, evaluator: Path = EVALUATOR) -> dict:
    seed_everything(params.base.seed)
    configure(params.base.precision)
    base = {}
    for part in ("autoencoder", "anchors"):
        path = out / f"{part}.json"
        if not path.is_file():
            raise UserError(f"{path}: missing; run `dvc repro evaluate` first")
        base[part] = json.loads(path.read_text())
    family = FAMILIES[name]
    values = evaluate_family(family, params.evaluate, prepared, models, evaluator,
                             params.base.seed, base, getattr(params, family.stage))
    write_json(out / f"{name}.json", values)
    learned_nothing = values["verdict"].startswith("no better")
    log.log(logging.WARNING if learned_nothing else logging.INFO, "%s: %s", name,
            values["verdict"])
    return values


def main() -> None:
    name = None

    def body(params: Params) -> dict:
        nonlocal name
        name = family_name(sys.argv[1:])
        return run(params, name)

    run_stage("score", body, lambda p: track_stage(
        f"score@{name}", p, ["base", "evaluate", FAMILIES[name].stage],
        metrics_files=[OUT / f"{name}.json"], datasets=PREPARED, named=True))


if __name__ == "__main__":
    main()
