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
