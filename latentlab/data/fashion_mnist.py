"""Fashion-MNIST from its original IDX files: a local copy (Debian's or the user's) or a download.

Integrity is the sha256 of each file's decompressed IDX payload, for a local copy and a download
alike: Debian's package re-compresses the files, so its .gz bytes differ from the canonical ones
while the data inside is identical. A truncated gzip stream fails its own CRC/length check first.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.data import http
from latentlab.data.raw import RawDataset, RawSplit
from latentlab.errors import UserError

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MIRRORS = [
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


@dataclass(frozen=True)
class IdxFile:
    name: str
    payload_sha256: str  # of the decompressed IDX bytes
    shape: tuple[int, ...]


FILES = {
    ("train", "images"): IdxFile(
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        (60000, 28, 28),
    ),
    ("train", "labels"): IdxFile(
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        (60000,),
    ),
    ("test", "images"): IdxFile(
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        (10000, 28, 28),
    ),
    ("test", "labels"): IdxFile(
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        (10000,),
    ),
}


def read_payload(path: Path) -> bytes:
    """Decompress one IDX .gz file; a truncated or garbled file is a UserError naming it."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(
            f"{path}: truncated or corrupt gzip file ({exc}); replace it, or remove it to "
            "download a fresh copy"
        ) from None


def problem(path: Path, spec: IdxFile) -> str | None:
    """What is wrong with a copy of ``spec`` at ``path``, or None if it is the original."""
    try:
        digest = hashlib.sha256(read_payload(path)).hexdigest()
    except UserError as exc:
        return str(exc)
    if digest != spec.payload_sha256:
        return (
            f"{path}: checksum mismatch (sha256 of the decompressed data is {digest}, expected "
            f"{spec.payload_sha256}); it is not the original Fashion-MNIST {spec.name}. "
            "Replace it, or remove it to download a fresh copy"
        )
    return None


def parse_idx(payload: bytes, spec: IdxFile) -> np.ndarray:
    """Decode IDX bytes (big-endian header: magic, dims) into a uint8 array."""
    ndim = payload[3]
    dims = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if payload[2] != 0x08 or dims != spec.shape:
        raise UserError(f"{spec.name}: unexpected IDX header {dims}; expected {spec.shape}")
    return np.frombuffer(payload, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _local_dir_with_files(candidates: list[Path]) -> Path | None:
    for directory in candidates:
        present = [(directory / spec.name).is_file() for spec in FILES.values()]
        if all(present):
            return directory
        if any(present):
            log.warning("%s holds only some of the Fashion-MNIST files; ignoring it", directory)
    return None


def fetch(out_dir: Path, local_dirs: list[Path], retries: int, mirrors: list[str],
          deadline: float = 900.0) -> dict:
    """Place the four verified IDX files in ``out_dir``: from the first local directory that
    holds them all, else downloaded from the first mirror that serves them intact."""
    source = _local_dir_with_files(local_dirs)
    for spec in FILES.values():
        dest = out_dir / spec.name
        if source is not None:
            if issue := problem(source / spec.name, spec):
                raise UserError(issue)
            shutil.copyfile(source / spec.name, dest)
        else:
            urls = [base + spec.name for base in mirrors]
            log.info("downloading %s", spec.name)
            http.download(urls, dest, lambda path, spec=spec: problem(path, spec), retries=retries,
                          deadline=deadline)
    origin = str(source) if source is not None else "download"
    log.info("Fashion-MNIST files verified (from %s)", origin)
    return {"origin": origin, "class_names": CLASS_NAMES}


def open_raw(raw_dir: Path, meta: dict) -> RawDataset:
    def load(split: str, part: str) -> np.ndarray:
        spec = FILES[(split, part)]
        return parse_idx(read_payload(raw_dir / spec.name), spec)

    splits = {}
    for split in ("train", "test"):
        labels = load(split, "labels").astype(np.int64)

        def stream(split=split):
            images = load(split, "images")
            for index, image in enumerate(images):
                yield f"{split}[{index}]", image

        splits[split] = RawSplit(labels=labels, stream=stream)
    return RawDataset("fashion_mnist", CLASS_NAMES, splits, skipped={})
