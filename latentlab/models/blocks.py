"""The conv and dense building blocks every model family shares: the autoencoders, the VAE and
the GAN. In a module of their own, so that a change to one family's model (e.g. the contrastive
autoencoder) is not a change to the others' code, and DVC does not retrain them for it."""

from __future__ import annotations

import math

import keras

from latentlab.models.layers import float32_output


def conv_widths(spec, size: int, base: int, cap: int = 512) -> list[int]:
    """Widths of the strided conv layers: ``spec`` itself, or for "auto" one layer per halving
    of the side until it is at most 7 (28 → 7, 32 → 4, 64 → 4, 128 → 4), widths doubling from
    ``base`` up to ``cap``: the DCGAN layout, which gives the earlier fixed defaults at 28."""
    if spec != "auto":
        return list(spec)
    widths, side = [], size
    while side > 7 or not widths:
        widths.append(min(base * 2 ** len(widths), cap))
        side = math.ceil(side / 2)
    return widths


def conv_encoder_body(x, filters: list[int], activation: str, kernel: int = 3,
                      batchnorm: bool = False):
    """Strided convolutions, each halving the side (rounding up). Returns (output, last side)."""
    side = x.shape[1]
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, kernel, strides=2, padding="same", name=f"conv_{i}")(x)
        if batchnorm and i:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(activation)(x)
        side = math.ceil(side / 2)
    return x, side


def _upsample(x, filters: int, kernel: int, upsample: str, name: str, activation=None):
    """Double the side: a stride-2 transposed conv, or resize-convolution (nearest-neighbour
    upsampling then a conv), which leaves no checkerboard (Odena et al. 2016)."""
    if upsample == "resize":
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
        return keras.layers.Conv2D(filters, kernel, padding="same", activation=activation,
                                   name=name)(x)
    return keras.layers.Conv2DTranspose(filters, kernel, strides=2, padding="same",
                                        activation=activation, name=name)(x)


def conv_decoder(inputs, filters: list[int], shape: tuple[int, int, int], activation: str,
                 output_activation: str = "sigmoid", kernel: int = 3,
                 batchnorm: bool = False, upsample: str = "transpose"):
    """The mirror of `conv_encoder_body` from a flat vector: Dense → Reshape → upsampling convs,
    cropped to ``shape`` where ceil-halving overshot an odd side; float32 out."""
    size, _, channels = shape
    side = size
    for _ in filters:
        side = math.ceil(side / 2)
    x = keras.layers.Dense(side * side * filters[-1])(inputs)
    if batchnorm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation(activation)(x)
    x = keras.layers.Reshape((side, side, filters[-1]))(x)
    for i, f in enumerate(reversed(filters[:-1])):
        x = _upsample(x, f, kernel, upsample, f"deconv_{i}")
        if batchnorm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation(activation)(x)
    x = _upsample(x, channels, kernel, upsample, "deconv_out", output_activation)
    extra = side * 2 ** len(filters) - size
    if extra:
        x = keras.layers.Cropping2D(((0, extra), (0, extra)))(x)
    return float32_output(x)


def dense_decoder(inputs, hidden: list[int], shape: tuple[int, int, int], activation: str,
                  output_activation: str = "sigmoid"):
    """Dense layers (``hidden`` read from the codings outwards) to a flat image, reshaped;
    float32 out."""
    x = inputs
    for units in hidden:
        x = keras.layers.Dense(units, activation=activation)(x)
    x = keras.layers.Dense(math.prod(shape), activation=output_activation)(x)
    return float32_output(keras.layers.Reshape(shape)(x))
