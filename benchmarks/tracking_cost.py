"""What MLflow tracking costs each stage: the time from a stage's finished outputs to its logged
run (params, metrics, histories, dataset inputs, images, artifacts, models, its parent's update),
against a real `mlflow server` on loopback.

Runs every stage's own tracking call (its `main()`, with the stage's work skipped) on the
outputs of this checkout's last `dvc repro`, with this checkout's code and, with ``--baseline
REV``, another revision's (a temporary git worktree), interleaved, ``--repeat`` times each; prints
the medians per stage and writes benchmarks/results/tracking_cost.json.

    uv run python -m benchmarks.tracking_cost --baseline 7434fb1
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import ROOT, Results, code_trees, command_line

STAGES = ["download", "downsample", "pretrain", "finetune", "train_vae", "train_gan", "evaluator",
          "evaluate", "render"]
SNIPPET = """
import importlib, json, sys, time
import keras, mlflow  # imported before the clock starts: a stage has them already
import latentlab.stage_runner as runner
from latentlab.params import load_params

params = load_params()
runner.run_stage = lambda name, body, track=None: track(params)  # the tracking call alone
seconds = {}
for stage in sys.argv[1:]:
    module = importlib.import_module(f"stages.{stage}")
    started = time.perf_counter()
    module.main()
    seconds[stage] = time.perf_counter() - started
print(json.dumps(seconds))
"""


def once(code: Path, tracking_uri: str, experiment: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_TRACKING_URI": tracking_uri,
           "MLFLOW_EXPERIMENT_NAME": experiment, "LATENTLAB_TRACKING": "1",
           "LATENTLAB_PIPELINE_ID": f"benchmark-{experiment}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", SNIPPET, *STAGES], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0 or "MLflow unreachable" in proc.stderr:
        raise SystemExit(f"tracking failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from tests.support.servers import MlflowServer

    parser = command_line(__doc__)
    parser.add_argument("--baseline", help="a git revision to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {}
    with code_trees(args.baseline) as trees, tempfile.TemporaryDirectory() as scratch:
        server = MlflowServer(Path(scratch) / "mlflow").start()
        try:
            for i in range(args.repeat):
                for name, code in trees.items():
                    runs.setdefault(name, []).append(once(code, server.url, f"{name.split()[0]}-{i}"))
                    print(name, i, {k: round(v, 2) for k, v in runs[name][-1].items()}, flush=True)
        finally:
            server.stop()
    medians = {name: {stage: round(statistics.median(r[stage] for r in rs), 2) for stage in STAGES}
               for name, rs in runs.items()}
    for name, values in medians.items():
        values["total"] = round(sum(values.values()), 2)
        print(f"{name}: " + ", ".join(f"{k} {v} s" for k, v in values.items()))
    Results(args, "tracking_cost").save(repeat=args.repeat, median_seconds=medians)


if __name__ == "__main__":
    main()
