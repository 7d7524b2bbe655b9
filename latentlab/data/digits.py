"""scikit-learn's bundled 8×8 handwritten digits: 1,797 real images, no download (tests, demos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.data.raw import RawDataset, RawSplit

FILE = "digits.npz"


def fetch(out_dir: Path) -> dict:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; stretch them to the uint8 range every other source uses.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    np.savez(out_dir / FILE, images=images, labels=bunch.target.astype(np.int64))
    return {"origin": "sklearn.datasets.load_digits", "class_names": [str(d) for d in range(10)]}


def open_raw(raw_dir: Path, meta: dict) -> RawDataset:
    with np.load(raw_dir / FILE) as arrays:
        labels = arrays["labels"]

    def stream():
        with np.load(raw_dir / FILE) as arrays:
            for index, image in enumerate(arrays["images"]):
                yield f"digits[{index}]", image

    return RawDataset("digits", meta["class_names"], {"train": RawSplit(labels, stream)}, skipped={})
