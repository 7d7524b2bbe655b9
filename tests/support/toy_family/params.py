"""The ``train_toy`` block."""

from __future__ import annotations

from latentlab.blocks import BatchSize, Block, ImagesSeen, Units


class ToyBlock(Block):
    latent: Units = 4
    images_seen: ImagesSeen = 512
    batch_size: BatchSize = 64
