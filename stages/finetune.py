"""Stage `finetune`: the label-efficiency curve, pretrained encoder vs from scratch vs a probe
(the protocol is `latentlab.training.label_efficiency`)."""

from __future__ import annotations

import logging
from pathlib import Path

from latentlab.data.prepared import fingerprint, load_split
from latentlab.errors import UserError
from latentlab.io import digest, staged_dir, write_csv, write_json
from latentlab.params import Params, save_resolved
from latentlab.precision import configure
from latentlab.stage_runner import run_stage
from latentlab.tracking import ModelSpec, track_stage
from latentlab.training.checkpoint import Checkpoint
from latentlab.training.label_efficiency import (
    FLOAT32_BECAUSE,
    curve,
    curve_columns,
    kinds,
    not_applicable,
    run_columns,
    subsets,
    summarize,
)

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
ENCODER = Path("models/pretrain/encoder.keras")
MODELS = Path("models/finetune")
CHECKPOINTS = Path("checkpoints/finetune")
METRICS = Path("metrics/finetune.json")
CURVE = Path("plots/finetune_curve.csv")
RUNS = Path("plots/finetune_runs.csv")


def run(params: Params, prepared: Path = PREPARED, encoder_path: Path = ENCODER,
        models_dir: Path = MODELS, checkpoints: Path = CHECKPOINTS, metrics_path: Path = METRICS,
        curve_path: Path = CURVE, runs_path: Path = RUNS) -> dict:
    block, seed = params.finetune, params.base.seed
    configure(params.base.precision, float32_because=FLOAT32_BECAUSE)
    reason = not_applicable(prepared)
    if reason is not None:  # still every declared output, marked as not applicable
        log.warning("finetune: %s", reason)
        with staged_dir(models_dir) as staging:
            save_resolved(params, ["base", "finetune"], staging / "params.resolved.yaml")
        checkpoints.mkdir(parents=True, exist_ok=True)
        write_csv(runs_path, [], run_columns(block))
        write_csv(curve_path, [], curve_columns(block))
        return write_metrics(metrics_path, {"available": False, "reason": reason})
    subsets(block, load_split(prepared, "train")[1], seed)  # impossible label counts: first
    if not encoder_path.is_file():
        raise UserError(f"{encoder_path}: no pretrained encoder; run `dvc repro pretrain` first")
    key = "-".join([params.block_hash("base", "finetune"), fingerprint(prepared),
                    digest(encoder_path)])
    with staged_dir(models_dir) as staging:
        rows = curve(block, prepared, encoder_path, Checkpoint(checkpoints, key), seed,
                     staging / "classifier.keras")
        save_resolved(params, ["base", "finetune"], staging / "params.resolved.yaml")
    metrics, points = summarize(rows, block)
    write_csv(runs_path, rows, run_columns(block))
    write_csv(curve_path, points, curve_columns(block))
    write_metrics(metrics_path, metrics)
    for name, entry in metrics.items():
        log.info("%s: %s", name, "  ".join(f"{kind} {entry[f'{kind}_mean']:.3f}±"
                                              f"{entry[f'{kind}_std']:.3f}" for kind in kinds(block)))
    return metrics


def write_metrics(path: Path, metrics: dict) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, metrics)
    return metrics


def main() -> None:
    run_stage("finetune", run, lambda p: track_stage(
        "finetune", p, ["base", "finetune"], metrics_files=[METRICS], artifacts=[CURVE, RUNS],
        models=[ModelSpec(str(MODELS / "classifier.keras"), "classifier", "latentlab-classifier")],
        datasets=PREPARED))


if __name__ == "__main__":
    main()
