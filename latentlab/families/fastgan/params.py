"""The ``train_fastgan`` block of params.yaml."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from latentlab.blocks import BatchSize, Block, ImagesSeen, LearningRate, MinEpochImages, Units


class FastGanBlock(Block):
    """The ``train_fastgan`` stage: the few-shot GAN for a few hundred images."""

    latent: Units = 128
    # G's width at its widest resolution step; each halving of the side doubles it (to <= 16×)
    width: Units = 16
    d_width: Units = 32         # D's first layer; doubling per halving (to <= 8×)
    # DiffAugment on real and fake alike, for D and for G's step through D (FastGAN's policy)
    diffaugment: list[Literal["color", "translation", "cutout"]] = ["color", "translation"]
    spectral_norm: bool = False  # every conv of G, D and the decoders (the paper's)
    reconstruction_weight: Annotated[float, Field(ge=0.0)] = 1.0  # D's self-supervised decoders
    ema: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999  # decay of the G weights that sample
    images_seen: ImagesSeen = 162_000
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 32
    learning_rate: LearningRate = 2e-4
    beta_1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    max_train_images: Annotated[int, Field(ge=0)] = 0
    grid_size: Annotated[int, Field(ge=1, le=32)] = 8
