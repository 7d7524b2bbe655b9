"""The headline metrics at equal images seen, float32 against bfloat16, over several seeds: the
stages themselves (`pretrain`, `evaluator`, `train@gan`, `evaluate`, `score@gan`) on the prepared
default data, at a fraction of the default budgets, each (seed, precision) in a process of its own.
The spread over seeds is the noise a precision's difference is read against.

    uv run dvc repro downsample
    uv run python -m benchmarks.precision_quality [--seeds 0 1 2] [--fraction 0.25]

Writes benchmarks/results/precision_quality.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import ROOT, Results, command_line

PREPARED = ROOT / "data/prepared"
HEADLINES = ("ae_val_mse", "evaluator_accuracy", "gan_fd", "gan_precision", "gan_recall")


def one(seed: int, precision: str, fraction: float) -> dict:
    """One seed's headlines in one precision (this process sets the policy)."""
    from latentlab.evaluation import evaluate_base, evaluate_family
    from latentlab.families import FAMILIES
    from latentlab.params import load_params, parse_params
    from stages import evaluator, pretrain, train_gan

    defaults = load_params(ROOT / "params.yaml").model_dump()
    blocks = {**defaults, "base": {"seed": seed, "precision": precision}}
    for name in ("pretrain", "evaluator", "train_gan"):
        blocks[name] = {**defaults[name],
                        "images_seen": int(defaults[name]["images_seen"] * fraction)}
    blocks["evaluate"] = {**defaults["evaluate"], "samples": 2000}
    params = parse_params(blocks, origin="benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        models = out / "models"
        ae = pretrain.run(params, PREPARED, models / "pretrain", out / "ck/pretrain",
                          out / "pretrain.json", out / "pretrain.csv")
        ev = evaluator.run(params, PREPARED, models / "evaluator", out / "evaluator.json")
        train_gan.run(params, PREPARED, models / "gan", out / "ck/gan", out / "gan.json",
                      out / "gan.csv", out / "gan_samples")
        path = models / "evaluator"
        base = evaluate_base(params.evaluate, PREPARED, models, path, seed)
        gan = evaluate_family(FAMILIES["gan"], params.evaluate, PREPARED, models, path, seed, base)
    return {"ae_val_mse": ae["val_mse"], "evaluator_accuracy": ev["test_accuracy"],
            "gan_fd": gan["frechet_distance"], "gan_precision": gan["precision"],
            "gan_recall": gan["recall"]}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.25,
                        help="of each default budget (pretrain, evaluator, train_gan)")
    parser.add_argument("--one", nargs=2, metavar=("SEED", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.fraction)))
        return
    runs: dict[str, list[dict]] = {"float32": [], "bfloat16": []}
    for seed in args.seeds:
        for precision in runs:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.precision_quality", "--one",
                                   str(seed), precision, "--fraction", str(args.fraction)],
                                  cwd=ROOT, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr[-3000:])
            runs[precision].append({"seed": seed,
                                    **json.loads(proc.stdout.strip().splitlines()[-1])})
            print(precision, runs[precision][-1], flush=True)
    summary = {name: {p: {"mean": float(np.mean([r[name] for r in rows])),
                          "std": float(np.std([r[name] for r in rows]))}
                      for p, rows in runs.items()} for name in HEADLINES}
    for name, values in summary.items():
        print(f"{name:20s}", "  ".join(f"{p} {v['mean']:.4g} ± {v['std']:.2g}"
                                       for p, v in values.items()))
    Results(args, "precision_quality").save(fraction=args.fraction, runs=runs, summary=summary)


if __name__ == "__main__":
    main()
