"""Variational autoencoder: a Gaussian encoder (mean, log-variance, sampled codings) and a decoder."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from latentlab.models.autoencoders import (
    conv_decoder,
    conv_encoder_body,
    conv_widths,
    dense_decoder,
)
from latentlab.models.layers import Sampling
from latentlab.params import VaeBlock


@dataclass
class Vae:
    encoder: keras.Model  # image → [mean, log_var, z]
    decoder: keras.Model  # z → image in [0, 1]


def build_vae(block: VaeBlock, image_shape: tuple[int, int, int], seed: int) -> Vae:
    widths = conv_widths(block.conv_filters, image_shape[0], 32)
    inputs = keras.Input(shape=image_shape, name="image")
    if block.architecture == "conv":
        x, _ = conv_encoder_body(inputs, widths, block.activation)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(inputs)
        for units in block.hidden_units:
            x = keras.layers.Dense(units, activation=block.activation)(x)
    mean = keras.layers.Dense(block.latent, name="mean")(x)
    log_var = keras.layers.Dense(block.latent, name="log_var")(x)
    z = Sampling(seed=seed, name="sampling")([mean, log_var])
    encoder = keras.Model(inputs, [mean, log_var, z], name="vae_encoder")

    codings = keras.Input(shape=(block.latent,), name="z")
    if block.architecture == "conv":
        out = conv_decoder(codings, widths, image_shape, block.activation)
    else:
        out = dense_decoder(codings, list(reversed(block.hidden_units)), image_shape,
                            block.activation)
    return Vae(encoder, keras.Model(codings, out, name="vae_decoder"))
