"""The in-between form of a dataset: what `download` wrote, read back as streams of items.

A source's `fetch` writes `data/raw/` (its files plus `source.json`); its `open` returns a
:class:`RawDataset` whose splits stream items one at a time, so that `downsample` never holds a
whole decoded dataset in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

# An encoded image (bytes), a path to an image file, or a decoded uint8 array (H, W[, C]).
Payload = Union[bytes, str, np.ndarray]
Item = tuple[str, Payload]  # (name used in messages, payload)

UNLABELED = -1


@dataclass
class RawSplit:
    """One split of a source: labels known up front, images streamed in the same order."""

    labels: np.ndarray  # int64; UNLABELED where the source has no labels
    stream: Callable[[], Iterator[Item]]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class RawDataset:
    name: str
    class_names: list[str] | None  # None for unlabeled sources
    splits: dict[str, RawSplit]  # keys among "train", "val", "test"; "train" always present
    skipped: dict[str, int]  # files the source left out, by reason


def write_json(path: Path, payload: dict) -> None:
    import json

    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())
