"""Image grids and other pictures written next to the pipeline's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, columns: int, min_cell: int = 48, gap: int = 2) -> Image.Image:
    """Tile uint8 images (N, H, W, C) into one picture, upscaling small ones for legibility."""
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    n, height, width, channels = images.shape
    scale = max(1, -(-min_cell // max(height, width)))
    rows = -(-n // columns)
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * cell_h + (rows + 1) * gap, columns * cell_w + (columns + 1) * gap, channels),
        255, dtype=np.uint8,
    )
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
        canvas[top: top + cell_h, left: left + cell_w] = image.repeat(scale, 0).repeat(scale, 1)
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def save_grid(images: np.ndarray, path: Path, columns: int) -> None:
    image_grid(images, columns).save(path)
