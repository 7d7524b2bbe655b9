"""One entry point per direction: `fetch` a source into `data/raw/`, `open_raw` it back."""

from __future__ import annotations

from pathlib import Path

from latentlab.data import digits, fashion_mnist, folder, tfds_source
from latentlab.data.raw import RawDataset, read_json, write_json
from latentlab.errors import UserError
from latentlab.params import DataBlock

SOURCE_FILE = "source.json"
_OPENERS = {
    "fashion_mnist": fashion_mnist.open_raw,
    "digits": digits.open_raw,
    "folder": folder.open_raw,
    "tfds": tfds_source.open_raw,
}


def fetch(block: DataBlock, out_dir: Path) -> dict:
    """Fetch the source named by ``data.source`` into ``out_dir`` and describe it in source.json."""
    kind = block.kind
    if kind == "fashion_mnist":
        meta = fashion_mnist.fetch(
            out_dir,
            [Path(block.local_dir), fashion_mnist.DEBIAN_DIR],
            block.download_retries,
            block.mirrors or fashion_mnist.MIRRORS,
            block.download_deadline,
        )
    elif kind == "digits":
        meta = digits.fetch(out_dir)
    elif kind == "folder":
        meta = folder.fetch(out_dir, Path(block.local_dir), block.on_bad_image)
    else:
        meta = tfds_source.fetch(
            out_dir, block.argument, block.tfds_splits.model_dump(), block.download_retries,
            manual_dir=Path(block.local_dir),
        )
    meta.update(kind=kind, source=block.source, on_bad_image=block.on_bad_image)
    write_json(out_dir / SOURCE_FILE, meta)
    return meta


def open_raw(raw_dir: Path) -> RawDataset:
    """Read back what `download` wrote."""
    path = raw_dir / SOURCE_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing; run the download stage first (`dvc repro download`)")
    meta = read_json(path)
    return _OPENERS[meta["kind"]](raw_dir, meta)


def source_meta(raw_dir: Path) -> dict:
    return read_json(raw_dir / SOURCE_FILE)
