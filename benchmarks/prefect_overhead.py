"""What the Prefect flow adds over a bare `dvc repro`, on tiny params (digits, 8×8).

Each run starts from a fresh copy of the project; bare and flow runs alternate. Tracking is off
in both so that only orchestration differs.

    uv run python -m benchmarks.prefect_overhead [--repeats 2]

Writes benchmarks/results/prefect_overhead.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from tests.support.project import TINY_PIPELINE, copy_project, set_params


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"dvc_repro": [], "prefect_flow": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for kind, cmd in (("dvc_repro", [sys.executable, "-m", "dvc", "repro"]),
                              ("prefect_flow", [sys.executable, "-m", "pipelines.flow"])):
                where = Path(tmp) / f"{kind}-{i}"
                where.mkdir()
                project = copy_project(where)
                set_params(project, **TINY_PIPELINE)
                env = {**os.environ, "LATENTLAB_TRACKING": "0", "PYTHONPATH": str(project),
                       "PREFECT_HOME": str(where / "prefect"),
                       "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
                env.pop("PREFECT_API_URL", None)
                times[kind].append(timed(cmd, project, env))
    best = {k: min(v) for k, v in times.items()}
    result = Results(args, "prefect_overhead")
    result.update({"seconds": times, "best": {k: round(v, 1) for k, v in best.items()},
              "overhead_seconds": round(best["prefect_flow"] - best["dvc_repro"], 1),
              "ratio": round(best["prefect_flow"] / best["dvc_repro"], 2)})
    result.save()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
