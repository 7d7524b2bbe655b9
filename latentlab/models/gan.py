"""GAN generators and discriminators: DCGAN (default) and dense, optionally class-conditional.

Images are scaled to [-1, 1] for GANs (the generator ends in tanh). The discriminator returns one
logit (or critic score for WGAN-GP) per image. Conditional models take the class as a second
input: one-hot next to the noise in G, one-hot planes next to the image channels in D.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import ops

from latentlab.models.autoencoders import conv_decoder, dense_decoder
from latentlab.models.layers import MinibatchDiscrimination, MinibatchStdDev
from latentlab.params import GanBlock


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
    """``n_classes`` > 0 builds the conditional pair (``block.conditional`` must be set)."""
    size = image_shape[0]
    noise = keras.Input(shape=(block.latent,), name="noise")
    g_inputs, x = [noise], noise
    if n_classes:
        g_label = keras.Input(shape=(n_classes,), name="label")
        g_inputs.append(g_label)
        x = keras.layers.Concatenate()([noise, g_label])
    if block.architecture == "dcgan":
        out = conv_decoder(x, block.filters, image_shape, "relu", output_activation="tanh",
                           kernel=5, batchnorm=True)
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
    if block.architecture == "dcgan":
        for i, filters in enumerate(block.filters):
            x = keras.layers.Conv2D(filters, 5, strides=2, padding="same", name=f"d_conv_{i}")(x)
            x = keras.layers.LeakyReLU(0.2)(x)
    else:
        x = keras.layers.Flatten()(x)
        for units in reversed(block.hidden_units):
            x = keras.layers.Dense(units)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
    x = _minibatch_features(x, block)
    x = keras.layers.Flatten()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    discriminator = keras.Model(d_inputs, logit, name="discriminator")
    return Gan(generator, discriminator, n_classes)


def one_hot(labels, n_classes: int):
    return ops.one_hot(ops.convert_to_tensor(labels, dtype="int32"), n_classes)
