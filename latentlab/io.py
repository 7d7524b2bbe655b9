"""Outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temp directory beside ``target``; on success it replaces ``target``.

    If the block raises, the temp directory is removed and any earlier ``target`` is left alone
    (DVC removes declared outputs before running a stage, so a failed stage leaves none); the
    temp directories of a run that was killed outright are removed by the next one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*"):  # left by a run that was killed
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; outputs are ordinary folders
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a hidden temp file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:  # e.g. the disk is full: no temp file stays behind, and it is named
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(exc.filename or path)) from exc


def strict_json(value) -> str:
    """``value`` as indented, standard JSON. A NaN or an infinity (JSON has no word for them, and
    DVC and other readers reject them) becomes null, and a ``not_finite`` entry beside it says
    what it was; a dict that already explains its nulls in ``not_finite`` keeps its words."""
    import json
    import math

    def bad(v) -> bool:
        return isinstance(v, float) and not math.isfinite(v)

    def word(v: float) -> str:
        return "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"

    def walk(node):
        if isinstance(node, dict):
            out = {k: None if bad(v) else walk(v) for k, v in node.items()}
            found = {k: word(v) for k, v in node.items() if bad(v)}
            if found:
                out["not_finite"] = {**found, **(out.get("not_finite") or {})}
            return out
        if isinstance(node, (list, tuple)):
            return [None if bad(v) else walk(v) for v in node]
        return node

    return json.dumps(walk(value), indent=2, allow_nan=False) + "\n"


def write_json(path: Path, value) -> None:
    """``value`` as indented, standard JSON (`strict_json`); a staged output's file: the folder
    appears whole."""
    path.write_text(strict_json(value))


def digest(*paths: Path) -> str:
    """A short sha256 of the contents of ``paths``, in order (to key checkpoints and runs)."""
    sha = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                sha.update(block)
    return sha.hexdigest()[:16]


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Rows as CSV under a header of ``columns`` (e.g. for `dvc plots`); no rows, the header."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
