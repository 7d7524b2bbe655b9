"""What a trained generator carries: ``model.json`` in its model directory, written by the stage
that trained it, and the same fields as the metadata of its logged MLflow model. Whatever samples
the model (`latentlab sample`, from a file or from the registry) reads it instead of guessing the
model's settings from its name or its shapes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CARD = "model.json"


@dataclass
class ModelCard:
    family: str                          # "gan", "vae", "diffusion"
    network: str                         # the file that draws images: "generator.keras"
    image_shape: list[int]               # what it draws: [H, W, C]
    pixel_range: list[float]             # its output range: [-1, 1] (tanh) or [0, 1] (sigmoid)
    latent: int                          # the size of the noise it draws from
    classes: list[str] | None = None     # class-conditional: the class names, in label order
    # diffusion: its schedule and default sampling (prediction, min/max_signal, steps, eta,
    # guidance)
    sampler: dict | None = None
    precision: str | None = None         # what it was trained in: "bfloat16" or "float32"

    def to_unit(self, images: np.ndarray) -> np.ndarray:
        """The network's output as floats in [0, 1]."""
        low, high = self.pixel_range
        return np.clip((np.asarray(images, dtype=np.float32) - low) / (high - low), 0.0, 1.0)

    def label(self, text: str) -> int:
        """A class given by its index or its name, checked against the classes the model knows."""
        if not self.classes:
            raise ValueError("this model is not class-conditional; leave --label out")
        if text in self.classes:
            return self.classes.index(text)
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(self.classes):
            return int(text)
        raise ValueError(f"--label {text}: the model knows classes 0..{len(self.classes) - 1} "
                         f"({', '.join(self.classes)})")


def fields(card: ModelCard) -> dict:
    """What the card file and the MLflow metadata hold (no ``sampler`` but a diffusion model's,
    no ``precision`` for a card written without one)."""
    return {k: v for k, v in asdict(card).items()
            if k not in ("sampler", "precision") or v is not None}


def write_card(directory: Path, card: ModelCard) -> None:
    (directory / CARD).write_text(json.dumps(fields(card), indent=2) + "\n")


def card_of(model_path: Path) -> ModelCard | None:
    """The card beside a model file when it describes that file (not, say, the VAE's encoder
    beside its decoder), or None (also for a model saved before cards were written)."""
    path = Path(model_path).parent / CARD
    card = from_dict(json.loads(path.read_text())) if path.is_file() else None
    return card if card is not None and card.network == Path(model_path).name else None


def from_dict(fields: dict | None) -> ModelCard | None:
    if not fields or "family" not in fields:
        return None
    return ModelCard(**{k: fields[k] for k in ModelCard.__dataclass_fields__ if k in fields})
