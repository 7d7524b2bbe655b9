"""The ``train_gan`` block of params.yaml."""

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


class GanBlock(Block):
    """The ``train_gan`` stage: a DCGAN (or dense GAN) and its training remedies."""

    architecture: Literal["dcgan", "dense"] = "dcgan"
    latent: Units = 100
    # dcgan: discriminator convs, generator mirrors them; auto = one stride-2 block per halving
    # of the side down to ≤ 7, widths from 64 doubling to ≤ 512 (28: [64, 128]; 64: 4 blocks)
    filters: ConvWidths = "auto"
    upsample: Literal["transpose", "resize"] = "transpose"  # G: transposed convs, or resize-conv
    spectral_norm: bool = False                # spectral normalisation of D's layers
    hidden_units: list[Units] = [100, 150]     # dense: generator from the noise outwards
    loss: Literal["nonsaturating", "wgan_gp"] = "nonsaturating"
    gp_weight: Annotated[float, Field(ge=0.0)] = 10.0
    d_steps: Annotated[int, Field(ge=1, le=20)] = 1  # discriminator updates per generator update
    conditional: bool = False                  # class-conditioned G and D (labeled data only)
    replay: bool = False                       # experience replay: a pool of past fakes for D
    replay_pool_size: Annotated[int, Field(ge=1, le=100_000)] = 50
    minibatch: Literal["none", "discrimination", "stddev"] = "none"
    minibatch_kernels: Units = 50
    minibatch_kernel_dim: Units = 5
    label_smoothing: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0  # real label = 1 − this
    label_flip: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0       # chance of a flipped D label
    instance_noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0   # start std, decays to 0
    # DiffAugment (Zhao et al. 2020): D sees real and fake images through the same random,
    # differentiable augmentations; [] = off
    diffaugment: list[Literal["color", "translation", "cutout"]] = []
    images_seen: ImagesSeen = 162_000       # 3 passes over 54,000
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 32
    learning_rate: LearningRate = 2e-4
    beta_1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    max_train_images: Annotated[int, Field(ge=0)] = 0
    grid_size: Annotated[int, Field(ge=1, le=32)] = 8

    @model_validator(mode="after")
    def _consistent(self) -> GanBlock:
        if self.loss == "wgan_gp" and (self.label_smoothing or self.label_flip):
            raise ValueError(
                "train_gan.label_smoothing and label_flip apply to the nonsaturating loss; "
                "set them to 0 with loss=wgan_gp"
            )
        return self
