"""GAN generators and discriminators: DCGAN (default) and dense, optionally class-conditional.

Images are scaled to [-1, 1] for GANs (the generator ends in tanh). The discriminator returns one
logit (or critic score for WGAN-GP) per image. Conditional models take the class as a second
input: one-hot next to the noise in G, one-hot planes next to the image channels in D.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import ops

from latentlab.families.gan.params import GanBlock
from latentlab.models.blocks import conv_decoder, conv_widths, dense_decoder
from latentlab.models.layers import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    SNConv2D,
    SNDense,
    float32_output,
)


@dataclass
class Gan:
    generator: keras.Model
    discriminator: keras.Model
    n_classes: int  # 0 = unconditional


def _minibatch_features(x, block: GanBlock):
    if block.minibatch == "stddev":
        return MinibatchStdDev(name="minibatch_stddev")(x)
    if block.minibatch == "discrimination":
        return MinibatchDiscrimination(block.minibatch_kernels, block.minibatch_kernel_dim,
                                       name="minibatch_discrimination")(keras.layers.Flatten()(x))
    return x


def build_gan(block: GanBlock, image_shape: tuple[int, int, int], n_classes: int = 0) -> Gan:
    """``n_classes`` > 0 builds the conditional pair (``block.conditional`` must be set).

    The DCGAN (Radford et al. 2016) follows the image size: the noise is projected to a 4×4 to
    7×7 map, then one stride-2 block per doubling (BatchNorm and ReLU in G, tanh out; LeakyReLU in
    D, mirrored; no pooling). ``upsample=resize`` swaps G's transposed convs for resize-convs;
    ``spectral_norm`` wraps D's layers in spectral normalisation (Miyato et al. 2018).
    """
    size = image_shape[0]
    widths = conv_widths(block.filters, size, 64)
    noise = keras.Input(shape=(block.latent,), name="noise")
    g_inputs, x = [noise], noise
    if n_classes:
        g_label = keras.Input(shape=(n_classes,), name="label")
        g_inputs.append(g_label)
        x = keras.layers.Concatenate()([noise, g_label])
    if block.architecture == "dcgan":
        out = conv_decoder(x, widths, image_shape, "relu", output_activation="tanh",
                           kernel=5, batchnorm=True, upsample=block.upsample)
    else:
        out = dense_decoder(x, block.hidden_units, image_shape, "selu", output_activation="tanh")
    generator = keras.Model(g_inputs, out, name="generator")

    image = keras.Input(shape=image_shape, name="image")
    d_inputs, x = [image], image
    if n_classes:
        d_label = keras.Input(shape=(n_classes,), name="label")
        d_inputs.append(d_label)
        planes = keras.layers.Reshape((1, 1, n_classes))(d_label)
        planes = keras.layers.UpSampling2D(size)(planes)  # (size, size, n_classes)
        x = keras.layers.Concatenate()([image, planes])
    conv, dense = ((SNConv2D, SNDense) if block.spectral_norm else
                   (keras.layers.Conv2D, keras.layers.Dense))
    if block.architecture == "dcgan":
        for i, filters in enumerate(widths):
            x = conv(filters, 5, strides=2, padding="same", name=f"d_conv_{i}")(x)
            x = keras.layers.LeakyReLU(0.2)(x)
    else:
        x = keras.layers.Flatten()(x)
        for units in reversed(block.hidden_units):
            x = dense(units)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
    x = _minibatch_features(x, block)
    x = keras.layers.Flatten()(x)
    logit = float32_output(dense(1, name="logit")(x))
    discriminator = keras.Model(d_inputs, logit, name="discriminator")
    return Gan(generator, discriminator, n_classes)


def one_hot(labels, n_classes: int):
    return ops.one_hot(ops.convert_to_tensor(labels, dtype="int32"), n_classes)
