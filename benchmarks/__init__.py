"""Long measurements, each run side by side with its baseline; results in benchmarks/results/."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def command_line(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: the first paragraph of its docstring as the description, and
    the options every benchmark has: ``--name`` (another run's results beside the first one's)
    and ``--results`` (the folder they go to)."""
    p = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    p.add_argument("--name", default="",
                   help="names another run's results: <benchmark>[_<part>]_<NAME>.json")
    p.add_argument("--results", type=Path, default=RESULTS, metavar="DIR",
                   help="the folder for the results (default benchmarks/results)")
    return p


class Results(dict):
    """A benchmark's figures, saved as ``<results>/<benchmark>[_<part>…][_<name>].json`` together
    with how they were made (``run``: the command, the git revision, the date, the host's cores
    and bfloat16 flags). With ``resume``, it starts from the figures a previous run of the same
    file left, so that a benchmark of many long parts measures each part once."""

    def __init__(self, args: argparse.Namespace, benchmark: str, *parts: str,
                 resume: bool = False):
        stem = "_".join([benchmark, *(str(p) for p in parts), *([args.name] if args.name else [])])
        self.path = Path(args.results) / f"{stem}.json"
        previous = json.loads(self.path.read_text()) if resume and self.path.is_file() else {}
        previous.pop("run", None)
        super().__init__(previous)

    def save(self, **figures) -> Path:
        """Add ``figures`` and write them all (after each part: an interrupted run keeps what it
        measured)."""
        self.update(figures)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"run": _run_record(), **self}, indent=2) + "\n")
        return self.path


def _run_record() -> dict:
    from latentlab.precision import CPU_FLAGS, cpu_flags

    try:  # a device's copy of the tree may have no git, or no repository
        revision = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
    except OSError:
        revision = ""
    spec = sys.modules["__main__"].__spec__
    program = ["-m", spec.name.removesuffix(".__main__")] if spec else [sys.argv[0]]
    return {"command": shlex.join(["python", *program, *sys.argv[1:]]),
            "revision": revision or None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "bf16_flags": sorted(cpu_flags() & set(CPU_FLAGS)),
                     "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow")}}


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
