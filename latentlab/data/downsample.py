"""Stream a raw dataset into fixed-size uint8 arrays, one `.npy` per split, on several cores.

Memory stays flat in the number of source images: items are streamed, a bounded number of
chunks is in flight in the worker pool, and images are appended to the output files
as they arrive.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import multiprocessing
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from latentlab.data.prep import Spec, prepare_chunk
from latentlab.data.prepared import SPLITS
from latentlab.data.raw import Item, RawDataset
from latentlab.data.splits import carve
from latentlab.errors import UserError

log = logging.getLogger(__name__)



def plan_routes(raw: RawDataset, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """For each raw split, the output split index (into SPLITS) of every item.

    The dataset's own val/test splits are kept; missing ones are carved from its train split,
    stratified by class, with fractions of that train split.
    """
    train_labels = raw.splits["train"].labels
    route = np.zeros(len(train_labels), dtype=np.int8)
    pool = np.arange(len(train_labels))
    for split, fraction, offset in (("test", test_fraction, 1), ("val", val_fraction, 2)):
        if split in raw.splits:
            continue
        # Fractions are of the whole train split, so rescale for what is left of it.
        share = min(1.0, fraction * len(train_labels) / max(len(pool), 1))
        kept, taken = carve(train_labels[pool], share, seed + offset)
        route[pool[taken]] = SPLITS.index(split)
        pool = pool[kept]
    routes = {"train": route}
    for split in ("val", "test"):
        if split in raw.splits:
            routes[split] = np.full(len(raw.splits[split]), SPLITS.index(split), dtype=np.int8)
    _check_sizes(raw, routes, {"val": val_fraction, "test": test_fraction})
    return routes


def split_sizes(routes: dict) -> dict[str, int]:
    """How many items each output split gets under ``routes``."""
    return {s: sum(int((r == i).sum()) for r in routes.values()) for i, s in enumerate(SPLITS)}


def _check_sizes(raw: RawDataset, routes: dict, fractions: dict[str, float]) -> None:
    """Every later stage needs a train split, and a val and test split unless asked for none."""
    sizes = split_sizes(routes)
    n = len(raw.splits["train"])
    for split in ("val", "test"):
        if sizes[split] == 0 and fractions[split] > 0 and split not in raw.splits:
            fraction = fractions[split]
            raise UserError(
                f"{raw.name} has {n} train images: downsample.{split}_fraction={fraction} of them "
                f"rounds to no {split} image. Add images (at least {int(np.ceil(0.5 / fraction))}) "
                f"or raise downsample.{split}_fraction (e.g. to {1 / max(n, 1):.2g})"
            )
    if sizes["train"] < 2:
        raise UserError(
            f"{raw.name} leaves {sizes['train']} train images after the val and test splits "
            f"({sizes['val']} and {sizes['test']}); add images or lower downsample.val_fraction "
            "and downsample.test_fraction"
        )


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _prepared(items: Iterable[Item], spec: Spec, workers: int, chunk_size: int):
    """Yield (name, array-or-error) in input order, keeping at most 2×workers chunks in flight."""
    if workers == 1:
        for chunk in _chunks(items, chunk_size):
            yield from prepare_chunk(chunk, spec)
        return
    # spawn: the parent may hold TensorFlow's threads (TFDS), which must not be forked.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending: deque = deque()
        for chunk in _chunks(items, chunk_size):
            pending.append(pool.apply_async(prepare_chunk, (chunk, spec)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


@dataclass
class _SplitWriter:
    """Appends uint8 images to a `.npy` file with plain writes: nothing of it stays in memory."""

    path: Path
    capacity: int
    spec: Spec
    count: int = 0
    labels: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.row_shape = (self.spec.size, self.spec.size, self.spec.channels)
        self.header = _npy_header((self.capacity, *self.row_shape))
        self.file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.file.write(self.header)

    def add(self, image: np.ndarray, label: int) -> None:
        self.file.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
        self.labels.append(label)
        self.count += 1

    def close(self) -> np.ndarray:
        """Write the final row count into the header (skipped images leave fewer rows)."""
        self.file.close()
        if self.count < self.capacity:
            header = _npy_header((self.count, *self.row_shape))
            if len(header) == len(self.header):
                with open(self.path, "r+b") as f:
                    f.write(header)
                    f.truncate(len(header) + self.count * int(np.prod(self.row_shape)))
            else:
                self._rewrite(header)
        return np.asarray(self.labels, dtype=np.int64)

    def _rewrite(self, header: bytes) -> None:
        tmp = self.path.with_suffix(".tmp.npy")
        remaining = self.count * int(np.prod(self.row_shape))
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            src.seek(len(self.header))
            dst.write(header)
            while remaining:
                block = src.read(min(remaining, 1 << 24))
                dst.write(block)
                remaining -= len(block)
        tmp.replace(self.path)


@dataclass
class Result:
    counts: dict[str, int]
    bad_images: list[tuple[str, str]]


def downsample(
    raw: RawDataset,
    out_dir: Path,
    spec: Spec,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    on_bad_image: str,
    workers: int,
    chunk_size: int,
) -> Result:
    """Write ``{split}_images.npy`` (N, S, S, C) uint8 and ``{split}_labels.npy`` per split."""
    routes = plan_routes(raw, val_fraction, test_fraction, seed)
    capacity = split_sizes(routes)
    _check_space(raw, sum(capacity.values()), spec, out_dir)
    writers = [_SplitWriter(out_dir / f"{s}_images.npy", capacity[s], spec) for s in SPLITS]
    bad: list[tuple[str, str]] = []
    total = sum(len(r) for r in routes.values())
    with tqdm(total=total, desc="downsample", unit="img", mininterval=2.0) as progress:
        for raw_split, route in routes.items():
            labels = raw.splits[raw_split].labels
            prepared = _prepared(raw.splits[raw_split].stream(), spec, workers, chunk_size)
            seen = 0
            for index, (name, result) in enumerate(prepared):
                seen += 1
                progress.update()
                if isinstance(result, str):
                    if on_bad_image == "fail":
                        raise UserError(
                            f"{name}: cannot be decoded as an image ({result}); fix or remove it, "
                            "or set data.on_bad_image=skip to leave such files out"
                        )
                    bad.append((name, result))
                    continue
                writers[route[index]].add(result, int(labels[index]))
            if seen != len(route):
                raise UserError(
                    f"{raw.name}/{raw_split}: streamed {seen} images but listed {len(route)}; "
                    "the raw data changed since download, rerun it (`dvc repro -f download`)"
                )
    counts = {s: w.count for s, w in zip(SPLITS, writers)}
    _check_decoded(raw, counts, capacity, bad)
    for split, writer in zip(SPLITS, writers):
        np.save(out_dir / f"{split}_labels.npy", writer.close())
    _check_variety(raw, np.load(out_dir / "train_images.npy", mmap_mode="r"), spec)
    if bad:
        log.warning("skipped %d images that could not be decoded, e.g. %s (%s)", len(bad), *bad[0])
    return Result(counts, bad)


def _check_space(raw: RawDataset, count: int, spec: Spec, out_dir: Path) -> None:
    """Refuse, before writing anything, arrays the disk cannot hold."""
    need = count * spec.size * spec.size * spec.channels
    free = shutil.disk_usage(out_dir).free
    if need > free:
        raise UserError(
            f"{raw.name}: {count:,} images at {spec.size}×{spec.size}×{spec.channels} need "
            f"{_size(need)} in {out_dir.parent}, which has {_size(free)} free; lower "
            "downsample.image_size or downsample.channels, or free space there"
        )


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def distinct_images(images: np.ndarray, chunk: int = 4096) -> int:
    """How many different pictures ``images`` (N, S, S, C) holds, byte for byte."""
    seen: set[bytes] = set()
    for start in range(0, len(images), chunk):
        block = np.ascontiguousarray(images[start:start + chunk])
        seen.update(hashlib.blake2b(row.tobytes(), digest_size=16).digest()
                    for row in block.reshape(len(block), -1))
    return len(seen)


def _check_variety(raw: RawDataset, train: np.ndarray, spec: Spec) -> None:
    """Degenerate data stops here, in its own words, not later as a model that "learned
    nothing": a train split of flat, single-colour images (fully transparent PNGs become plain
    background), or of one picture repeated."""
    n = len(train)
    flat = n and all(
        bool((np.ptp(block.reshape(len(block), -1, spec.channels), axis=1) == 0).all())
        for block in (np.asarray(train[i:i + 4096]) for i in range(0, n, 4096)))
    if flat:
        colour = np.asarray(train[0]).reshape(-1, spec.channels)[0].tolist()
        transparent = (" (a fully transparent image becomes the background colour; with "
                       "downsample.fit=content there is no object to crop to)")
        raise UserError(
            f"{raw.name}: every one of the {n:,} train images is a single flat colour after "
            f"preparing, e.g. {colour}{transparent}: there is nothing to learn; check that the "
            "files in the source hold pictures")
    distinct = distinct_images(train)
    if distinct < 2:
        raise UserError(
            f"{raw.name}: the {n:,} train images are all one and the same picture: there is "
            "nothing to learn, and generation metrics cannot tell a copy from a generator; add "
            "different images to the source")
    if distinct < n / 2:
        log.warning("%s: only %d of the %d train images are different pictures; the rest are "
                    "copies, which the models see as the same image", raw.name, distinct, n)


def _check_decoded(raw: RawDataset, counts: dict[str, int], planned: dict[str, int],
                   bad: list[tuple[str, str]]) -> None:
    """The splits' sizes were checked on the listing; undecodable files may still empty one."""
    emptied = [s for s in ("val", "test") if planned[s] > 0 and counts[s] == 0]
    if not bad or (counts["train"] >= 2 and not emptied):
        return
    name, why = bad[0]
    raise UserError(
        f"{raw.name}: {len(bad)} of {sum(planned.values())} images could not be decoded (e.g. "
        f"{name}: {why}), which leaves {counts['train']} train, {counts['val']} val and "
        f"{counts['test']} test images; replace the broken files with real images "
        "(data.on_bad_image=fail names each one)"
    )
