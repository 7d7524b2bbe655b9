"""FastGAN's networks (Liu et al. 2021, "Towards faster and stabilized GAN training for
high-fidelity few-shot image synthesis"), sized for 16 to 128 px.

- G: the noise projected to a 4×4 to 7×7 map, then one up block per doubling of the side
  (nearest-neighbour upsampling and a 3×3 conv: no checkerboard; BatchNorm; a gated linear unit,
  half the conv's channels gating the other half). Skip-layer excitation (SLE): a low-resolution map
  gates each channel of a map three doublings larger (two such pairs), so coarse structure
  steers fine texture along a short gradient path.
- D: strided down blocks, each the mean of a conv path and an average-pooled shortcut, to a map
  of at most 8×8 whose logits are a small patch map (hinge loss per patch). It also returns its
  features at that size and at twice it, from which `decoders` rebuild the whole (augmented)
  real image at low resolution and one quadrant of it: D must keep what an image holds, not only
  what separates real from fake.

``spectral_norm`` divides every conv kernel of G, D and the decoders by its largest singular value
(Miyato et al. 2018), as the paper does; BatchNorm stays.

Keras layers and latentlab's registered `GatedLinearUnit` and `SNConv2D`: a saved generator loads
wherever latentlab is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from latentlab.families.fastgan.params import FastGanBlock
from latentlab.models.layers import GatedLinearUnit, SNConv2D, float32_output

RECONSTRUCTED = 32  # the side the decoders rebuild at most (the paper: 128, from 1024)


@dataclass
class FastGan:
    generator: keras.Model
    discriminator: keras.Model  # image → (logits, small features, mid features)
    decoders: keras.Model       # (small, a quadrant of mid) → (whole image, that quadrant)


def base_side(size: int) -> int:
    """G's first map: the side halved until it is at most 7 (64 → 4, 28 → 7, 8 → 4)."""
    side = size
    while side > 7:
        if side % 2:
            raise ValueError(f"train_fastgan needs an image side that halves to 7 or less "
                             f"(8, 16, 28, 32, 64, 128, ...), not {size}")
        side //= 2
    return side


def conv_layer(block: FastGanBlock):
    """The conv layer of every network: spectrally normalised or not."""
    return SNConv2D if block.spectral_norm else keras.layers.Conv2D


def _glu(x, conv, filters: int, kernel: int, name: str):
    """Conv to twice ``filters`` → BatchNorm → gated linear unit: half the channels gate the
    other half."""
    x = conv(2 * filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return GatedLinearUnit(name=name)(x)


def _up(x, conv, filters: int, name: str):
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    return _glu(x, conv, filters, 3, name)


def _excite(small, big, conv, name: str):
    """Skip-layer excitation: ``small`` pooled to 4×4 (or taken whole), a conv to one weight per
    channel of ``big`` (swish, then sigmoid), which scales those channels."""
    side = small.shape[1]
    if side > 4 and side % 4 == 0:
        small = keras.layers.AveragePooling2D(side // 4, name=f"{name}_pool")(small)
        side = 4
    channels = big.shape[-1]
    w = conv(channels, side, padding="valid", name=f"{name}_conv")(small)
    w = keras.layers.Activation("swish", name=f"{name}_swish")(w)
    w = conv(channels, 1, activation="sigmoid", name=f"{name}_gate")(w)
    return keras.layers.Multiply(name=name)([big, w])  # (b, 1, 1, C) over every pixel


def g_widths(size: int, width: int) -> list[int]:
    """G's channels at each side from the first map up: ``width`` at the image's side, doubling
    per halving, at most 16 × ``width``."""
    sides = [base_side(size)]
    while sides[-1] < size:
        sides.append(sides[-1] * 2)
    return [width * min(size // s, 16) for s in sides]


def build_generator(block: FastGanBlock, image_shape: tuple[int, int, int]) -> keras.Model:
    size, _, channels = image_shape
    conv = conv_layer(block)
    widths = g_widths(size, block.width)
    side = base_side(size)
    noise = keras.Input((block.latent,), name="noise")
    x = keras.layers.Dense(side * side * 2 * widths[0], use_bias=False, name="project")(noise)
    x = keras.layers.Reshape((side, side, 2 * widths[0]))(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = GatedLinearUnit(name="project_glu")(x)
    features = [x]
    gap = min(3, len(widths) - 1)  # SLE: the paper's 4 → 64 and 8 → 128 at 64: 4 → 32, 8 → 64
    for i, filters in enumerate(widths[1:], start=1):
        x = _up(x, conv, filters, f"up_{i}")
        if gap and i - gap in (0, 1) and i - gap < len(features):
            x = _excite(features[i - gap], x, conv, f"sle_{i}")
        features.append(x)
    x = conv(channels, 3, padding="same", activation="tanh", name="to_rgb")(x)
    return keras.Model(noise, float32_output(x), name="generator")


def _down(x, conv, filters: int, name: str):
    """The mean of a strided conv path and an average-pooled shortcut (the paper's DownBlockComp)."""
    main = conv(filters, 4, strides=2, padding="same", use_bias=False, name=f"{name}_conv")(x)
    main = keras.layers.BatchNormalization(name=f"{name}_bn")(main)
    main = keras.layers.LeakyReLU(0.2)(main)
    main = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(main)
    main = keras.layers.BatchNormalization(name=f"{name}_bn2")(main)
    main = keras.layers.LeakyReLU(0.2)(main)
    direct = keras.layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    direct = conv(filters, 1, use_bias=False, name=f"{name}_direct")(direct)
    direct = keras.layers.BatchNormalization(name=f"{name}_direct_bn")(direct)
    direct = keras.layers.LeakyReLU(0.2)(direct)
    return keras.layers.Average(name=name)([main, direct])


def _decoder(x, conv, steps: int, channels: int, width: int, name: str):
    for i in range(steps):
        x = _up(x, conv, max(width // 2 ** i, 8), f"{name}_up_{i}")
    x = conv(channels, 3, padding="same", activation="tanh", name=f"{name}_rgb")(x)
    return float32_output(x, name=f"{name}_out")


def build_fastgan(block: FastGanBlock, image_shape: tuple[int, int, int]) -> FastGan:
    size, _, channels = image_shape
    generator = build_generator(block, image_shape)
    conv = conv_layer(block)

    image = keras.Input(image_shape, name="image")
    stride = 2 if size > 16 else 1  # a small image keeps its side for one more level
    x = conv(block.d_width, 4, strides=stride, padding="same", name="first")(image)
    x = keras.layers.LeakyReLU(0.2)(x)
    mid, level = x, 0
    while x.shape[1] > 8 or level == 0:
        mid = x
        level += 1
        x = _down(x, conv, block.d_width * min(2 ** level, 8), f"down_{level}")
    small = x
    h = conv(small.shape[-1], 1, use_bias=False, name="head")(small)
    h = keras.layers.BatchNormalization(name="head_bn")(h)
    h = keras.layers.LeakyReLU(0.2)(h)
    logits = conv(1, min(4, small.shape[1]), padding="valid", name="logits")(h)
    discriminator = keras.Model(image, [float32_output(logits, "logits_out"), small, mid],
                                name="discriminator")

    small_in = keras.Input(small.shape[1:], name="small")
    part_in = keras.Input((mid.shape[1] // 2, mid.shape[2] // 2, mid.shape[3]), name="part")
    whole, part = reconstruction_sides(size)
    whole_steps = int(math.log2(whole // small.shape[1]))
    part_steps = int(math.log2(part // part_in.shape[1]))
    decoders = keras.Model(
        [small_in, part_in],
        [_decoder(small_in, conv, whole_steps, channels, block.d_width, "whole"),
         _decoder(part_in, conv, part_steps, channels, block.d_width, "part")],
        name="decoders")
    return FastGan(generator, discriminator, decoders)


def reconstruction_sides(size: int) -> tuple[int, int]:
    """The sides the decoders rebuild: the whole image and one quadrant, at most
    `RECONSTRUCTED` px."""
    return min(size, RECONSTRUCTED), min(size // 2, RECONSTRUCTED)
