"""Turn one source image into a square uint8 array of the requested size and channels.

Runs in worker processes, so it imports nothing heavier than NumPy and Pillow.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageOps

from latentlab.data.raw import Item, Payload
from latentlab.errors import UserError


@dataclass(frozen=True)
class Spec:
    size: int
    channels: int  # 1 (grayscale) or 3 (RGB)
    # "crop": center-crop to square; "pad": pad to square with the background; "content": crop
    # to the object's bounding box first, then pad
    fit: str


class BadImage(Exception):
    """The payload could not be decoded as an image."""


def _open(payload: Payload) -> Image.Image:
    if isinstance(payload, np.ndarray):
        array = payload[..., 0] if payload.ndim == 3 and payload.shape[-1] == 1 else payload
        return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    if isinstance(payload, bytes):
        return Image.open(io.BytesIO(payload))
    return Image.open(payload)


def _to_8_bits(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale scaled to 0..255; Pillow's convert would clip it."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or array.max(initial=0) > 255:
        array = array / 257.0  # 65535 → 255
    return Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8), "L")


WHITE = 255
CONTENT_THRESHOLD = 24  # fit=content: a pixel this far (0..255) from the background is the object


def _flatten_alpha(image: Image.Image) -> tuple[Image.Image, tuple | None]:
    """The image on white (transparent pixels become white, not black: sprite sets such as
    Pokémon rely on it), and the bounding box of its visible pixels."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
    return Image.alpha_composite(background, rgba), rgba.getchannel("A").getbbox()


def border_colour(image: Image.Image) -> int | tuple[int, ...]:
    """The median colour of the image's one-pixel border: its background, for padding."""
    array = np.asarray(image)
    border = np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])
    median = np.median(border.reshape(len(border), -1), axis=0).round().astype(int)
    return int(median[0]) if image.mode == "L" else tuple(int(v) for v in median)


def content_box(image: Image.Image, background) -> tuple | None:
    """The bounding box of the pixels that differ from ``background``; None if none do."""
    plain = Image.new(image.mode, image.size, background)
    difference = ImageChops.difference(image, plain)
    if image.mode != "L":
        difference = difference.convert("L")
    return difference.point(lambda v: 255 if v > CONTENT_THRESHOLD else 0).getbbox()


def _square(image: Image.Image, fit: str, background, box: tuple | None) -> Image.Image:
    if fit == "content" and box is not None:
        image = image.crop(box)
    width, height = image.size
    if fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.crop((left, top, left + side, top + side))
    if width == height:
        return image
    side = max(width, height)
    return ImageOps.pad(image, (side, side), color=background, centering=(0.5, 0.5))


def prepare(payload: Payload, spec: Spec) -> np.ndarray:
    """Decode, square, resize and convert one image; raise BadImage if it can't be decoded."""
    try:
        image = _open(payload)
        mode = "L" if spec.channels == 1 else "RGB"
        # JPEG can decode straight at 1/2, 1/4 or 1/8 scale, never below the requested size.
        image.draft(mode, (spec.size, spec.size))
        image = ImageOps.exif_transpose(image)
        if image.mode == "I" or image.mode.startswith("I;16"):
            image = _to_8_bits(image)
        box = None
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if transparent:
            image, box = _flatten_alpha(image)
        image = image.convert(mode)
        # Padding continues the image's own background: white where transparency was flattened,
        # else the colour of its border (black bars beside a white background are artefacts).
        if transparent:
            background = WHITE if mode == "L" else (WHITE,) * 3
        else:
            background = border_colour(image)
            if spec.fit == "content":
                box = content_box(image, background)
        image = _square(image, spec.fit, background, box)
        if image.size != (spec.size, spec.size):
            image = image.resize((spec.size, spec.size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(
            f"{payload}: the file is gone since `download` indexed the folder; rerun "
            "`dvc repro` so that download indexes it again"
        ) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImage(str(exc) or type(exc).__name__) from None
    return array[..., None] if spec.channels == 1 else array


def prepare_chunk(items: list[Item], spec: Spec) -> list[tuple[str, np.ndarray | str]]:
    """Prepare a chunk in a worker: (name, array) for good images, (name, error) for bad ones."""
    out: list[tuple[str, np.ndarray | str]] = []
    for name, payload in items:
        try:
            out.append((name, prepare(payload, spec)))
        except BadImage as exc:
            out.append((name, str(exc)))
    return out
