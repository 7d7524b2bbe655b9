"""Files in the real download layout of TFDS's oxford_flowers102, made up, small and few.

`102flowers.tgz` holds `jpg/image_NNNNN.jpg`; `imagelabels.mat` the 1-based class of each image;
`setid.mat` the 1-based image ids of the train / val / test splits. `url_infos` gives the
builder's URL -> (size, sha256, name) table for these files, in place of the published one.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FILES = ("102flowers.tgz", "imagelabels.mat", "setid.mat")


def make_files(where: Path, per_split: int = 12, classes: int = 3, size: int = 40,
               seed: int = 0) -> dict[str, list[int]]:
    """Write the three files into ``where``; return the 1-based image ids of each split."""
    rng = np.random.default_rng(seed)
    where.mkdir(parents=True, exist_ok=True)
    count = 3 * per_split
    labels = np.arange(count) % classes + 1
    y, x = np.mgrid[:size, :size]
    with tarfile.open(where / "102flowers.tgz", "w:gz") as archive:
        for image_id in range(1, count + 1):
            hue = np.array([60, 120, 200]) * labels[image_id - 1] % 256
            radius = size / 4 + rng.uniform(0, size / 4)
            disc = (x - size / 2) ** 2 + (y - size / 2) ** 2 < radius ** 2
            pixels = np.where(disc[..., None], hue, 30 + rng.integers(0, 40, 3)).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
            info = tarfile.TarInfo(f"jpg/image_{image_id:05d}.jpg")
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    ids = rng.permutation(np.arange(1, count + 1))
    splits = {"trnid": ids[:per_split], "valid": ids[per_split:2 * per_split],
              "tstid": ids[2 * per_split:]}
    scipy.io.savemat(where / "imagelabels.mat", {"labels": labels[None, :]})
    scipy.io.savemat(where / "setid.mat", {k: v[None, :] for k, v in splits.items()})
    return {k: v.tolist() for k, v in splits.items()}


def url_infos(where: Path) -> dict:
    from tensorflow_datasets.core.download import checksums

    return {BASE_URL + name: checksums.compute_url_info(where / name) for name in FILES}
