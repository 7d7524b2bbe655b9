"""Stage `train@<family>`: train one generator family (`python -m stages.train gan`), with the
outputs its package declares (`latentlab.families`)."""

from __future__ import annotations

import sys
from pathlib import Path

from latentlab.errors import UserError
from latentlab.families import FAMILIES, Family
from latentlab.params import Params
from latentlab.stage_runner import run_stage
from latentlab.tracking import ModelSpec, track_stage

PREPARED = Path("data/prepared")


def family_of(argv: list[str]) -> Family:
    if len(argv) != 1 or argv[0] not in FAMILIES:
        raise UserError(f"give one generator family to train: {', '.join(FAMILIES)} "
                        f"(got {' '.join(argv) or 'none'})")
    return FAMILIES[argv[0]]


def outputs(family: Family) -> dict[str, Path]:
    """Where the stage writes, as dvc.yaml declares it."""
    return {"models_dir": Path("models") / family.name,
            "checkpoints": Path("checkpoints") / family.stage,
            "metrics_path": Path("metrics") / f"{family.name}.json",
            "history_path": Path("plots") / f"{family.name}_history.csv",
            "samples_dir": Path("reports") / family.name}


def run(params: Params, name: str, prepared: Path = PREPARED, models_dir: Path | None = None,
        checkpoints: Path | None = None, metrics_path: Path | None = None,
        history_path: Path | None = None, samples_dir: Path | None = None) -> dict:
    """Train family ``name``; each output left out goes where dvc.yaml has it."""
    family = FAMILIES[name]
    given = {"models_dir": models_dir, "checkpoints": checkpoints, "metrics_path": metrics_path,
             "history_path": history_path, "samples_dir": samples_dir}
    paths = {key: given[key] or default for key, default in outputs(family).items()}
    return family.module("train").run(params, prepared, **paths)


def main() -> None:
    family = None

    def body(params: Params) -> dict:
        nonlocal family
        family = family_of(sys.argv[1:])
        return run(params, family.name)

    def track(params: Params) -> None:
        out, models = outputs(family), Path("models") / family.name
        track_stage(
            family.stage, params, ["base", family.stage], metrics_files=[out["metrics_path"]],
            histories=[out["history_path"]], artifacts=[out["samples_dir"]],
            frames={f"{family.name}_samples": out["samples_dir"] / "progress"},
            models=[*(ModelSpec(str(models / other), Path(other).stem) for other in family.others),
                    ModelSpec(str(models / family.network), Path(family.network).stem,
                              family.registered)],
            datasets=PREPARED)

    known = sys.argv[1] if len(sys.argv) == 2 and sys.argv[1] in FAMILIES else None
    run_stage(FAMILIES[known].stage if known else "train", body, track)

if __name__ == "__main__":
    main()
