"""The finetune stage's own protocol with a semi-supervised method on: every classifier of the
label-efficiency curve, the semi-supervised ones made from the supervised models (FixMatch, or
Poisson learning with `--method poisson`) included, on the stage's subsets, with each model's
seconds.

Run it in a built project (`dvc repro pretrain`); params.yaml's `finetune` block, overridden here:

    uv run python -m benchmarks.label_semi                               # 10 labels a class, 3 seeds
    uv run python -m benchmarks.label_semi --labels-per-class 10 100 --seeds 5 --semi-steps 2000
    uv run python -m benchmarks.label_semi --encoder ENCODER --name X
    uv run python -m benchmarks.label_semi --method poisson --labels-per-class 10 50 100 --seeds 5

Writes benchmarks/results/label_semi.json (one row per point and seed, the summary per point).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from latentlab.params import load_params
from latentlab.training import label_efficiency
from latentlab.training.checkpoint import Checkpoint
from latentlab.training.label_efficiency import curve, kinds, load_data, summarize


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[10])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--method", choices=["fixmatch", "poisson"], default="fixmatch")
    parser.add_argument("--graph-images", type=int, default=None,
                        help="poisson: unlabeled images in the graph (0 = all)")
    parser.add_argument("--semi-steps", type=int, default=None)
    parser.add_argument("--semi-ratio", type=int, default=None)
    parser.add_argument("--encoder", type=Path, default=Path("models/pretrain/encoder.keras"))
    args = parser.parse_args()
    params = load_params()
    overrides = {"labels_per_class": args.labels_per_class, "seeds": args.seeds,
                 "semi_supervised": args.method}
    overrides.update({k: v for k, v in (("semi_steps", args.semi_steps),
                                        ("semi_ratio", args.semi_ratio),
                                        ("semi_graph_images", args.graph_images)) if v is not None})
    block = params.finetune.model_copy(update=overrides)
    data = load_data(Path("data/prepared"))

    seconds: dict[str, float] = {}
    for name in ("train_pretrained", "train_scratch", "semi_accuracy"):  # time each kind of model
        original = getattr(label_efficiency, name)

        def timed(*a, _original=original, _name=name, **k):
            start = time.perf_counter()
            model = _original(*a, **k)
            key = "semi_two" if _name == "semi_accuracy" else _name.removeprefix("train_")
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
            return model

        setattr(label_efficiency, name, timed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = curve(block, data, args.encoder, Checkpoint(Path(tmp), "label_semi"),
                        params.base.seed)
    total = time.perf_counter() - start
    metrics, _ = summarize(rows, block)
    for name, entry in metrics.items():
        print(name, "  ".join(f"{k} {100 * entry[f'{k}_mean']:.1f} ± {100 * entry[f'{k}_std']:.1f}"
                              for k in kinds(block)))
    models = len(rows)
    print("seconds per model:", {k: round(v / models, 1) for k, v in seconds.items()},
          f"all: {total:.0f} s")
    Results(args, "label_semi").save(
        finetune=block.model_dump(), rows=rows, metrics=metrics,
        seconds_per_model={k: v / models for k, v in seconds.items()}, seconds=total)


if __name__ == "__main__":
    main()
