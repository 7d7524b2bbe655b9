"""The ``train_vae`` block of params.yaml."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from latentlab.blocks import (
    BatchSize,
    Block,
    ConvWidths,
    ImagesSeen,
    LearningRate,
    MinEpochImages,
    Optimizer,
    Units,
)


class VaeBlock(Block):
    """The ``train_vae`` stage: a variational autoencoder."""

    # auto = dense for grayscale images under 32 px (Géron's), conv for colour or larger images
    architecture: Literal["auto", "dense", "conv"] = "auto"
    latent: Units = 10
    hidden_units: list[Units] = [150, 100]     # dense: from the input inwards
    conv_filters: ConvWidths = "auto"           # conv: as pretrain.conv_filters
    activation: Literal["relu", "selu", "elu", "tanh"] = "selu"
    beta: Annotated[float, Field(ge=0.0)] = 1.0  # weight of the KL term
    images_seen: ImagesSeen = 1_350_000     # 25 passes over 54,000 (Géron's notebook: 25 epochs)
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 128
    learning_rate: LearningRate = 1e-3
    optimizer: Optimizer = "nadam"
    max_train_images: Annotated[int, Field(ge=0)] = 0  # 0 = the whole train split
    grid_size: Annotated[int, Field(ge=1, le=32)] = 8
