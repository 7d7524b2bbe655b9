"""A directory of images: class sub-folders become labels, a flat folder is unlabeled.

`download` does not copy the images: it writes a manifest (path, size, sha256, label), so DVC
sees any change to the folder's content, and `downsample` reads the files in place.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from latentlab.data.local_dir import check_odd, walk
from latentlab.data.raw import UNLABELED, RawDataset, RawSplit
from latentlab.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}
MANIFEST = "manifest.csv"


VECTOR_SUFFIXES = {".svg", ".svgz", ".eps", ".pdf", ".ai"}


def _found(others: list[Path]) -> str:
    """What a folder with no images holds instead, and what to do about it."""
    if not others:
        return "; the folder is empty: check data.local_dir"
    counts = Counter(path.suffix.lower() or "(no suffix)" for path in others)
    held = ", ".join(f"{n} {suffix} file{'s' if n > 1 else ''}"
                     for suffix, n in counts.most_common())
    if set(counts) & VECTOR_SUFFIXES:
        return (f"; it holds {held}: vector images are not supported, rasterise them to PNG "
                "first (e.g. `rsvg-convert -w 128 -o x.png x.svg`)")
    return f"; it holds {held}: check data.local_dir"


def scan(root: Path, on_bad_image: str
         ) -> tuple[list[tuple[Path, str | None]], list[Path], dict[Path, str]]:
    """List (file, class name or None) under ``root``, the non-image files left out, and the
    entries that are not regular files (skipped)."""
    if not root.is_dir():
        raise UserError(
            f"data.local_dir={str(root)!r} is not a directory; point it at a folder of images "
            "(class sub-folders for labels, or a flat folder for unlabeled images)"
        )
    files, odd = walk(root)  # FIFOs, sockets and broken symlinks are never opened
    check_odd(odd, on_bad_image)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others and on_bad_image == "fail":
        raise UserError(
            f"{others[0]}: not an image file (JPEG, PNG, GIF, BMP or WebP), and {len(others) - 1} "
            "more; remove them or set data.on_bad_image=skip"
        )
    if not images:
        raise UserError(f"{root}: no images found (JPEG, PNG, GIF, BMP or WebP){_found(others)}")
    labeled = any(p.parent != root for p in images)
    entries: list[tuple[Path, str | None]] = []
    for path in images:
        if not labeled:
            entries.append((path, None))
        elif path.parent == root:
            # Loose files beside class folders have no class; leave them out and count them.
            others.append(path)
        else:
            entries.append((path, path.relative_to(root).parts[0]))
    return entries, others, odd


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch(out_dir: Path, root: Path, on_bad_image: str) -> dict:
    """Write the manifest of ``root``; return the class names and what was left out."""
    root = root.expanduser().resolve()
    entries, others, odd = scan(root, on_bad_image)
    class_names = sorted({c for _, c in entries if c is not None}) or None
    with (out_dir / MANIFEST).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "size", "sha256", "label"])
        for path, cls in entries:
            label = class_names.index(cls) if class_names else UNLABELED
            writer.writerow([path.relative_to(root).as_posix(), path.stat().st_size, _sha256(path), label])
    if others:
        log.warning("left out %d files that are not classed images, e.g. %s", len(others), others[0])
    log.info("indexed %d images in %s (%s)", len(entries), root,
             f"{len(class_names)} classes" if class_names else "unlabeled")
    return {
        "origin": str(root),
        "root": str(root),
        "class_names": class_names,
        "skipped": {"not_an_image": len(others), "not_a_regular_file": len(odd)},
    }


def open_raw(raw_dir: Path, meta: dict) -> RawDataset:
    root = Path(meta["root"])
    with (raw_dir / MANIFEST).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)

    def stream():
        for row in rows:
            path = root / row["path"]
            yield str(path), str(path)

    return RawDataset(
        name=f"folder:{root.name}",
        class_names=meta["class_names"],
        splits={"train": RawSplit(labels, stream)},
        skipped=dict(meta.get("skipped", {})),
    )
