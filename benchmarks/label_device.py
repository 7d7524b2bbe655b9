"""The label-efficiency curve at the scale of a GPU (jax): the `pretrain` stage's contrastive
autoencoder trained longer, wider and on larger batches than a CPU allows, then the `finetune`
stage's own curve (Poisson learning included) on its encoder.

A GPU machine has jax but neither tensorflow, the project's data, some of its packages nor the
network. So, here, in a built project (`dvc repro downsample`), pack the prepared split
(compressed: 30 MiB for Fashion-MNIST) and the wheels of the packages that machine lacks (keras,
pydantic, ruamel.yaml and their needs, at this environment's versions, for CPython 3.12 on
x86-64) into the ignored folder `.device/`:

    uv run python -m benchmarks.label_device pack

There, with `.device` carried:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/wheels/*.whl &&
    PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax PYTHONUNBUFFERED=1 python3 -m benchmarks.label_device \
        --results $OUT run --images-seen 10800000 --conv-filters 64 128 --batch-size 1024 --seeds 5

Everything else is params.yaml's (`pretrain` and `finetune` blocks), and the code is the stages':
`stages.pretrain.run` (its checkpoint resumes a run cut off by the time limit when `--work` is
kept) and `label_efficiency.curve`. Writes label_device.json under ``--results``: the pretraining's
metrics and seconds, every (point, seed) row and the summary per point, with the seconds of each.
Tried here on the CPU under jax, with tensorflow, mlflow, prefect and dvc made unimportable.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT, Results, command_line, pack_for_device, unpack_on_device


def run(args: argparse.Namespace) -> None:
    import keras

    from latentlab.params import load_params
    from latentlab.training.checkpoint import Checkpoint
    from latentlab.training.label_efficiency import curve, load_data, summarize
    from stages import pretrain

    work = args.work or Path(tempfile.mkdtemp())
    prepared = work / "prepared"
    unpack_on_device(args.data, prepared)
    params = load_params(ROOT / "params.yaml")
    pretrain_update = {"images_seen": args.images_seen, "batch_size": args.batch_size}
    if args.conv_filters:
        pretrain_update["conv_filters"] = args.conv_filters
    if args.codings:
        pretrain_update["codings"] = args.codings
    params = params.model_copy(update={
        "pretrain": params.pretrain.model_copy(update=pretrain_update),
        "finetune": params.finetune.model_copy(update={
            "labels_per_class": args.labels_per_class, "seeds": args.seeds})})
    result = Results(args, "label_device")
    result.update(backend=keras.backend.backend(), pretrain=params.pretrain.model_dump(),
                  finetune=params.finetune.model_dump())
    started = time.perf_counter()
    result["pretrain_metrics"] = pretrain.run(
        params, prepared, models_dir=work / "models", checkpoints=work / "checkpoints",
        metrics_path=work / "pretrain.json", history_path=work / "pretrain_history.csv")
    result["pretrain_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result["pretrain_metrics"]), f"{result['pretrain_seconds']} s", flush=True)
    started = time.perf_counter()
    rows, _ = curve(params.finetune, load_data(prepared), work / "models" / "encoder.keras",
                    Checkpoint(work / "checkpoints", "finetune"), params.base.seed)
    result["curve_seconds"] = round(time.perf_counter() - started, 1)
    result["rows"] = rows
    result["metrics"], _ = summarize(rows, params.finetune)
    for name, entry in result["metrics"].items():
        print(name, {k: round(100 * v, 1) for k, v in entry.items() if k.endswith("_mean")},
              flush=True)
    result.save()


def main() -> None:
    parser = command_line(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="here: the prepared split for the device")
    packing.add_argument("--prepared", type=Path, default=ROOT / "data/prepared")
    packing.add_argument("--to", type=Path, default=ROOT / ".device")
    running = commands.add_parser("run", help="there: pretrain, then the curve")
    running.add_argument("--data", type=Path, default=ROOT / ".device")
    running.add_argument("--work", type=Path, default=None,
                         help="models and checkpoints (default: a temporary folder)")
    running.add_argument("--images-seen", type=int, default=10_800_000)  # 200 passes
    running.add_argument("--batch-size", type=int, default=1024)
    running.add_argument("--conv-filters", type=int, nargs="+", default=None)
    running.add_argument("--codings", type=int, default=None)
    running.add_argument("--labels-per-class", type=int, nargs="+", default=[10, 100])
    running.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.command == "pack":
        pack_for_device(args.prepared, args.to)
    else:
        run(args)


if __name__ == "__main__":
    main()
