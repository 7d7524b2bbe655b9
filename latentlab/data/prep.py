"""Turn one source image into a square uint8 array of the requested size and channels.

Runs in worker processes, so it imports nothing heavier than NumPy and Pillow.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from latentlab.data.raw import Item, Payload
from latentlab.errors import UserError


@dataclass(frozen=True)
class Spec:
    size: int
    channels: int  # 1 (grayscale) or 3 (RGB)
    fit: str  # "crop" (center-crop to square) or "pad" (pad to square)


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


def _flatten_alpha(image: Image.Image) -> Image.Image:
    # Transparent pixels become white, not black: sprite sets (e.g. Pokémon) rely on it.
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba)


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
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = _flatten_alpha(image)
        image = image.convert(mode)
        width, height = image.size
        side = min(width, height) if spec.fit == "crop" else max(width, height)
        if spec.fit == "crop":
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        elif width != height:
            image = ImageOps.pad(image, (side, side), color=0, centering=(0.5, 0.5))
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
