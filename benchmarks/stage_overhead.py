"""A training stage's fixed cost before any work, per Keras backend: start Python, import the
stage, seed, build and save a one-layer model (saving is where Keras reached for TensorFlow).

Runs the same snippet against this checkout and, with ``--baseline REV``, against another
revision (checked out in a temporary git worktree), interleaved, ``--repeat`` times each; prints
the medians and whether TensorFlow got imported, and writes benchmarks/results/stage_overhead.json.

    uv run python -m benchmarks.stage_overhead --baseline 1793510
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import Results, code_trees, command_line

SNIPPET = """
import sys, tempfile
import stages.pretrain
from latentlab.seeding import seed_everything
seed_everything(0)
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.save(tempfile.mkdtemp() + "/m.keras")
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def once(code: Path, backend: str) -> tuple[float, bool]:
    env = {**os.environ, "PYTHONPATH": str(code), "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SNIPPET], cwd=code, env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - started, "tensorflow imported: True" in proc.stdout


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--baseline", help="a git revision to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = Results(args, "stage_overhead")
    with code_trees(args.baseline) as trees:
        for backend in ("jax", "tensorflow"):
            times: dict[str, list[float]] = {name: [] for name in trees}
            imported: dict[str, bool] = {}
            for _ in range(args.repeat):
                for name, code in trees.items():
                    seconds, tf = once(code, backend)
                    times[name].append(seconds)
                    imported[name] = tf
            for name in trees:
                results[f"{backend}: {name}"] = {
                    "median_s": round(statistics.median(times[name]), 2),
                    "runs_s": [round(t, 2) for t in times[name]],
                    "tensorflow_imported": imported[name],
                }
                print(f"{backend:10s} {name:22s} {results[f'{backend}: {name}']}", flush=True)
    results.save()


if __name__ == "__main__":
    main()
