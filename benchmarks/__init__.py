"""Long measurements, each run side by side with its baseline; results in benchmarks/results/."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_result(path: Path, result) -> None:
    """Write a benchmark's figures as indented JSON, creating benchmarks/results/ if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


@contextlib.contextmanager
def code_trees(baseline: str | None) -> Iterator[dict[str, Path]]:
    """{name: source tree}: this checkout, and with ``baseline`` that git revision first, checked
    out in a temporary worktree that is removed afterwards."""
    if baseline is None:
        yield {"this checkout": ROOT}
        return
    worktree = Path(tempfile.mkdtemp()) / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), baseline], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        yield {f"baseline {baseline}": worktree, "this checkout": ROOT}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT,
                       check=False, capture_output=True)


def accuracy_summary(rows: list[dict], skip=lambda name: False) -> dict[str, dict[str, str]]:
    """Per label count, each accuracy of the (point, seed) rows as "mean ± std" in percent, and
    printed; ``skip`` names the row entries that are not accuracies (beside the row's keys)."""
    import numpy as np

    summary = {}
    for k in sorted({r["labels_per_class"] for r in rows}):
        point = [r for r in rows if r["labels_per_class"] == k]
        summary[str(point[0]["labels"])] = {
            name: f"{100 * np.mean([r[name] for r in point]):.1f} ± "
                  f"{100 * np.std([r[name] for r in point]):.1f}"
            for name in point[0]
            if name not in ("labels_per_class", "seed", "labels") and not skip(name)}
    for labels, scores in summary.items():
        print(labels, scores)
    return summary
