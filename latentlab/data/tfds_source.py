"""Any TFDS dataset with an image feature, built into a data dir inside the project.

The image feature and the label (a ClassLabel, preferring the dataset's supervised keys) are
detected from the dataset's features; datasets without a label are read as unlabeled. Images are
streamed still encoded and decoded by the `downsample` workers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from latentlab.data.raw import UNLABELED, RawDataset, RawSplit
from latentlab.errors import UserError

log = logging.getLogger(__name__)

DATA_DIR = "tfds"
# latentlab split -> names a dataset may use for its own version of that split.
OWN_SPLITS = {"val": ("validation", "val"), "test": ("test",)}


def _builder(name: str, data_dir: Path):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=str(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(
            f"tfds:{name}: no such TFDS dataset; see `tfds.list_builders()` for the names"
        ) from None


def _features(builder) -> tuple[str, str | None]:
    """The image feature's key and the label feature's key (None when unlabeled)."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    supervised = builder.info.supervised_keys or ()
    if not images:
        raise UserError(
            f"tfds:{builder.name} has no image feature (features: {', '.join(features)}); "
            "choose an image dataset"
        )
    image = supervised[0] if supervised and supervised[0] in images else images[0]
    label = supervised[1] if len(supervised) > 1 and supervised[1] in labels else (
        labels[0] if labels else None
    )
    return image, label


def _resolve_splits(builder, requested: dict[str, str]) -> dict[str, str]:
    """Map latentlab splits to TFDS split expressions; "" picks the dataset's own split if any."""
    own = set(builder.info.splits.keys())
    resolved = {"train": requested["train"]}
    for split, aliases in OWN_SPLITS.items():
        if requested[split]:
            resolved[split] = requested[split]
        else:
            match = next((a for a in aliases if a in own), None)
            if match:
                resolved[split] = match
    return resolved


def _expected_files(builder) -> dict[str, str]:
    """The files the builder downloads, {file name: URL}, as its registered checksums list them."""
    return {info.filename: url for url, info in (builder.url_infos or {}).items() if info.filename}


def _offline_message(builder, manual_dir: Path, problem: str) -> str:
    files = _expected_files(builder)
    listing = "; ".join(f"{name} from {url}" for name, url in files.items())
    how = (f"download {listing} into data.local_dir ({manual_dir})" if files else
           f"put the dataset's downloaded files in data.local_dir ({manual_dir}); the dataset's "
           "page in the TFDS catalog lists them")
    return (f"tfds:{builder.name} could not be downloaded ({problem}). Offline? {how} and rerun: "
            f"TFDS prepares the dataset from those files into data/raw/{DATA_DIR}")


def _check_reachable(builder, manual_dir: Path, retries: int, timeout: float) -> None:
    """Fail fast, with what to do, when a file the builder needs is neither local nor reachable.

    TFDS's own downloader retries a dead connection for minutes before raising a bare
    `requests` error; one HEAD request per missing file finds out first.
    """
    import requests
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    missing = {n: u for n, u in _expected_files(builder).items() if not (manual_dir / n).is_file()}
    for url in missing.values():
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(requests.ConnectionError),
                stop=stop_after_attempt(retries + 1),
                wait=wait_exponential(multiplier=2, max=60),
                reraise=True,
            ):
                with attempt:
                    requests.head(url, timeout=timeout, allow_redirects=True).close()
        except requests.RequestException as exc:
            problem = f"{url}: {type(exc).__name__}"
            raise UserError(_offline_message(builder, manual_dir, problem)) from None


def fetch(out_dir: Path, name: str, requested_splits: dict[str, str], retries: int,
          manual_dir: Path, timeout: float = 30.0) -> dict:
    """Download (or take from ``manual_dir``) and prepare the dataset under ``out_dir/tfds``.

    Files the builder would download are taken from ``manual_dir`` when it holds them under their
    published names (`data.local_dir`); TFDS checks their checksums either way.
    """
    import requests
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    data_dir = out_dir / DATA_DIR
    builder = _builder(name, data_dir)
    image_key, label_key = _features(builder)
    manual_dir = manual_dir.expanduser().resolve()
    _check_reachable(builder, manual_dir, retries, timeout)
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir) if manual_dir.is_dir() else None)
    try:
        builder.download_and_prepare(download_config=config)
    except NonMatchingChecksumError as exc:
        raise UserError(
            f"tfds:{name}: a file does not match the dataset's published checksum "
            f"({str(exc).splitlines()[0]}); download it again (a file in data.local_dir "
            f"{manual_dir} must be the original, unmodified)"
        ) from None
    except requests.RequestException as exc:
        raise UserError(_offline_message(builder, manual_dir, str(exc))) from None
    class_names = list(builder.info.features[label_key].names) if label_key else None
    return {
        "origin": f"tfds:{name}",
        "tfds_name": name,
        "image_key": image_key,
        "label_key": label_key,
        "splits": _resolve_splits(builder, requested_splits),
        "class_names": class_names,
    }


def open_raw(raw_dir: Path, meta: dict) -> RawDataset:
    import tensorflow_datasets as tfds

    builder = _builder(meta["tfds_name"], raw_dir / DATA_DIR)
    image_key, label_key = meta["image_key"], meta["label_key"]
    skip = {image_key: tfds.decode.SkipDecoding()}

    def dataset(expr: str):
        try:
            return builder.as_dataset(split=expr, decoders=skip, shuffle_files=False)
        except (ValueError, KeyError) as exc:
            raise UserError(
                f"tfds:{builder.name}: bad split expression {expr!r} in data.tfds_splits ({exc})"
            ) from None

    splits = {}
    for split, expr in meta["splits"].items():
        if label_key:
            labels = np.fromiter(
                (ex for ex in tfds.as_numpy(dataset(expr).map(lambda ex: ex[label_key]))),
                dtype=np.int64,
            )
        else:
            count = int(dataset(expr).reduce(0, lambda n, _: n + 1))
            labels = np.full(count, UNLABELED, dtype=np.int64)

        def stream(expr=expr):
            for index, example in enumerate(tfds.as_numpy(dataset(expr))):
                yield f"tfds:{builder.name}/{expr}[{index}]", example[image_key]

        splits[split] = RawSplit(labels, stream)
    return RawDataset(f"tfds:{builder.name}", meta["class_names"], splits, skipped={})
