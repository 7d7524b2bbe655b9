"""Long measurements, each run side by side with its baseline; results in benchmarks/results/."""

from __future__ import annotations

import json
from pathlib import Path


def write_result(path: Path, result) -> None:
    """Write a benchmark's figures as indented JSON, creating benchmarks/results/ if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
