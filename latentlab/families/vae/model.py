"""Variational autoencoder: a Gaussian encoder (mean, log-variance, sampled codings) and a decoder."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from latentlab.families.vae.params import VaeBlock
from latentlab.models.blocks import (
    conv_decoder,
    conv_encoder_body,
    conv_widths,
    dense_decoder,
)
from latentlab.models.layers import Sampling


@dataclass
class Vae:
    encoder: keras.Model  # image → [mean, log_var, z]
    decoder: keras.Model  # z → image in [0, 1]


def architecture(block: VaeBlock, image_shape: tuple[int, int, int]) -> str:
    """``block.architecture``, with "auto" resolved: Géron's dense VAE for small grayscale images,
    the conv VAE for colour images or sides of 32 px and more (a dense layer over 64×64×3 inputs
    has 12,288 × width weights and learns blurry blobs)."""
    if block.architecture != "auto":
        return block.architecture
    size, _, channels = image_shape
    return "conv" if channels == 3 or size >= 32 else "dense"


def build_vae(block: VaeBlock, image_shape: tuple[int, int, int], seed: int) -> Vae:
    kind = architecture(block, image_shape)
    widths = conv_widths(block.conv_filters, image_shape[0], 32)
    inputs = keras.Input(shape=image_shape, name="image")
    if kind == "conv":
        x, _ = conv_encoder_body(inputs, widths, block.activation)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(inputs)
        for units in block.hidden_units:
            x = keras.layers.Dense(units, activation=block.activation)(x)
    # The encoder's outputs are float32 (the KL term's inputs) under any precision policy.
    mean = keras.layers.Dense(block.latent, name="mean", dtype="float32")(x)
    # The log-variance starts at 0 for every input (unit variance, the prior's): from random
    # weights over thousands of inputs it starts far from it, exp() of it overflows, and the KL
    # term swamps the first steps (6e11 in the first epoch at 64×64×3).
    log_var = keras.layers.Dense(block.latent, kernel_initializer="zeros", name="log_var",
                                 dtype="float32")(x)
    z = Sampling(seed=seed, name="sampling", dtype="float32")([mean, log_var])
    encoder = keras.Model(inputs, [mean, log_var, z], name="vae_encoder")

    codings = keras.Input(shape=(block.latent,), name="z")
    if kind == "conv":
        out = conv_decoder(codings, widths, image_shape, block.activation)
    else:
        out = dense_decoder(codings, list(reversed(block.hidden_units)), image_shape,
                            block.activation)
    return Vae(encoder, keras.Model(codings, out, name="vae_decoder"))
