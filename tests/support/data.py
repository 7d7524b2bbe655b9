"""Test data: validated params, budgets in passes, and real image folders written to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab.data.fashion_mnist import DEBIAN_DIR
from latentlab.params import Params, parse_params

needs_debian_fashion_mnist = pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)",
)


def make_params(**blocks: dict) -> Params:
    """Params with the given blocks overridden, validated like params.yaml."""
    return parse_params({name: dict(values) for name, values in blocks.items()}, origin="test")


def write_image(path: Path, rng: np.random.Generator, size: tuple[int, int], fmt: str) -> None:
    """A random but structured picture (a gradient plus a block), saved in ``fmt``."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = ((x / width + y / height) * 127).astype(np.uint8)
    rgb = np.stack([base, np.roll(base, 7, axis=1), 255 - base], axis=-1)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    rgb[top: top + height // 3, left: left + width // 3] = rng.integers(0, 256, 3, dtype=np.uint8)
    image = Image.fromarray(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "GIF":
        image = image.convert("P")
    image.save(path, format=fmt)


def make_image_folder(
    root: Path, classes: list[str] | None, per_class: int, seed: int = 0, corrupt: int = 0,
    formats: tuple[str, ...] = ("JPEG",), sizes: tuple[int, int] = (40, 200),
) -> list[Path]:
    """Write a folder of real image files (class sub-folders, or flat when classes is None).

    ``corrupt`` files get an image suffix but truncated or garbage bytes. Returns corrupt paths.
    """
    rng = np.random.default_rng(seed)
    suffix = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp"}
    groups = classes or [None]
    count = 0
    for cls in groups:
        folder = root / cls if cls else root
        for i in range(per_class):
            fmt = formats[count % len(formats)]
            size = (int(rng.integers(*sizes)), int(rng.integers(*sizes)))
            write_image(folder / f"img_{i:05d}{suffix[fmt]}", rng, size, fmt)
            count += 1
    bad = []
    for i in range(corrupt):
        folder = root / groups[i % len(groups)] if classes else root
        path = folder / f"broken_{i:03d}.jpg"
        good = folder / f"img_{i:05d}.jpg"
        data = good.read_bytes()[: 200] if i % 2 == 0 else b"this is not an image"
        path.write_bytes(data)
        bad.append(path)
    return bad


DIGITS_TRAIN = 1439  # digits' train split as `digits_prepared` carves it


def passes(n: int, images: int = DIGITS_TRAIN) -> dict:
    """A training budget of ``n`` passes over ``images`` train images, one pass an epoch."""
    return {"images_seen": n * images, "min_epoch_images": 1}


def make_rgba_sprites(root: Path, count: int, size: int = 24, seed: int = 0,
                      radius: tuple[int, int] | None = None, bar: bool = False) -> None:
    """A flat folder (no labels) of RGBA PNG sprites: a coloured disc on a transparent ground,
    its radius drawn from ``radius`` (default ``size // 8`` to ``size // 5``); ``bar`` adds a
    half-transparent bar of another colour."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    low, high = radius or (size // 8, size // 5 + 1)
    y, x = np.mgrid[:size, :size]
    for i in range(count):
        sprite = np.zeros((size, size, 4), np.uint8)
        cx, cy = rng.integers(size // 3, 2 * size // 3, 2)  # never near the corners
        disc = (x - cx) ** 2 + (y - cy) ** 2 < rng.integers(low, high) ** 2
        sprite[disc, :3] = rng.integers(0, 256, 3)
        sprite[disc, 3] = 255
        if bar:
            top, left = rng.integers(size // 4, size // 2, 2)
            box = (slice(top, top + size // 3), slice(left, left + size // 10))
            sprite[box][..., :3], sprite[box][..., 3] = rng.integers(0, 256, 3), 200
        Image.fromarray(sprite, "RGBA").save(root / f"sprite_{i:04d}.png")

