"""The ``train_diffusion`` block of params.yaml."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from latentlab.blocks import (
    BatchSize,
    Block,
    ConvWidths,
    ImagesSeen,
    LearningRate,
    MinEpochImages,
    Units,
)


class DiffusionBlock(Block):
    """The ``train_diffusion`` stage: a U-Net denoiser on a cosine schedule, sampled by DDIM."""

    widths: ConvWidths = "auto"    # one per U-Net level; auto = `width` doubling (to <= 256)
                                   # once per halving of the side down to <= 7 (28: [16, 32, 64])
    width: Units = 16              # auto: the top level's width
    blocks: Annotated[int, Field(ge=1, le=8)] = 1  # residual blocks per level
    prediction: Literal["v", "eps"] = "v"  # what the network predicts: v or the noise
    min_signal: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.02  # signal rate at t = 1
    max_signal: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95  # signal rate at t = 0
    conditional: bool = False      # class-conditional (labeled data): classifier-free guidance
    label_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1  # training: "no class" instead
    ema: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999  # decay of the weights that sample
    steps: Annotated[int, Field(ge=1, le=10_000)] = 20    # sampling: DDIM steps
    eta: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0    # 0 = deterministic DDIM, 1 = DDPM
    guidance: Annotated[float, Field(ge=0.0, le=20.0)] = 1.0  # 0 = unconditional, 1 = conditional
    # score@diffusion: its Fréchet distance at each of these DDIM step counts, on fewer samples
    steps_curve: list[Annotated[int, Field(ge=1, le=1000)]] = [5, 10, 20, 50]
    steps_curve_samples: Annotated[int, Field(ge=50, le=100_000)] = 1000
    images_seen: ImagesSeen = 162_000
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 64
    learning_rate: LearningRate = 1e-3
    max_train_images: Annotated[int, Field(ge=0)] = 0
    grid_size: Annotated[int, Field(ge=1, le=32)] = 8

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionBlock:
        if self.min_signal >= self.max_signal:
            raise ValueError("train_diffusion.min_signal must be below max_signal")
        return self
