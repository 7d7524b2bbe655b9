"""Autoencoders: dense (optionally tied, layer-wise), convolutional and recurrent.

Every encoder maps an image batch (N, S, S, C) in [0, 1] to a flat codings vector through a final
Dense layer of ``codings`` units, which carries the sparsity penalty; every decoder maps codings
back to images through a sigmoid. Input noise (denoising) sits between the input and the encoder
of the training model only, and is active in training alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from latentlab.models.blocks import conv_decoder, conv_encoder_body, conv_widths
from latentlab.models.layers import DenseTranspose, Sparsity, float32_output, jittable, nt_xent
from latentlab.params import PretrainBlock


@dataclass
class Autoencoder:
    encoder: keras.Model
    decoder: keras.Model
    model: keras.Model  # input → [noise] → encoder → decoder, what is trained
    noise: keras.layers.Layer | None  # the denoising input noise of ``model``, if any
    # Dense, layer-wise training: (encoder layer, decoder layer) pairs from the input inwards.
    layer_pairs: list[tuple[keras.layers.Layer, keras.layers.Layer]]


def codings_layer(block: PretrainBlock) -> keras.layers.Dense:
    regularizer = None
    if block.sparsity != "none":
        regularizer = Sparsity(block.sparsity, block.sparsity_weight, block.sparsity_target)
    return keras.layers.Dense(
        block.codings, activation=block.codings_act, activity_regularizer=regularizer,
        name="codings",
    )


def noise_layer(block: PretrainBlock) -> keras.layers.Layer | None:
    if block.noise == "gaussian":
        return keras.layers.GaussianNoise(block.noise_level, name="input_noise")
    if block.noise == "dropout":
        return keras.layers.Dropout(block.noise_level, name="input_noise")
    return None


def build_autoencoder(block: PretrainBlock, image_shape: tuple[int, int, int]) -> Autoencoder:
    """The autoencoder ``block`` describes, for images of ``image_shape`` (S, S, C)."""
    builders = {"dense": _dense, "conv": _conv, "recurrent": _recurrent}
    encoder, decoder, pairs = builders[block.architecture](block, tuple(image_shape))
    inputs = keras.Input(shape=image_shape, name="image")
    noise = noise_layer(block)
    x = noise(inputs) if noise is not None else inputs
    model = keras.Model(inputs, decoder(encoder(x)), name=f"{block.architecture}_autoencoder")
    return Autoencoder(encoder, decoder, model, noise, pairs)


def _dense(block: PretrainBlock, shape: tuple[int, int, int]):
    size = math.prod(shape)
    encoder_layers = [
        keras.layers.Dense(units, activation=block.activation, name=f"dense_{i}")
        for i, units in enumerate(block.hidden_units)
    ] + [codings_layer(block)]
    widths = [size, *block.hidden_units]  # what each decoder layer maps back to
    activations = ["sigmoid"] + [block.activation] * len(block.hidden_units)
    decoder_layers = []
    for i, (dense, width, activation) in enumerate(zip(encoder_layers, widths, activations)):
        if block.tied_weights:
            decoder_layers.append(DenseTranspose(dense, activation, name=f"tied_{i}"))
        else:
            decoder_layers.append(keras.layers.Dense(width, activation=activation, name=f"out_{i}"))

    inputs = keras.Input(shape=shape)
    x = keras.layers.Flatten()(inputs)
    for layer in encoder_layers:
        x = layer(x)
    encoder = keras.Model(inputs, float32_output(x), name="encoder")

    codings = keras.Input(shape=(block.codings,))
    x = codings
    for layer in reversed(decoder_layers):
        x = layer(x)
    decoder = keras.Model(codings, float32_output(keras.layers.Reshape(shape)(x)), name="decoder")
    return encoder, decoder, list(zip(encoder_layers, decoder_layers))


def _conv(block: PretrainBlock, shape: tuple[int, int, int]):
    widths = conv_widths(block.conv_filters, shape[0], 32)
    inputs = keras.Input(shape=shape)
    x, _ = conv_encoder_body(inputs, widths, block.activation)
    x = keras.layers.Flatten()(x)
    encoder = keras.Model(inputs, float32_output(codings_layer(block)(x)), name="encoder")
    codings = keras.Input(shape=(block.codings,))
    decoded = conv_decoder(codings, widths, shape, block.activation)
    return encoder, keras.Model(codings, decoded, name="decoder"), []


def _recurrent(block: PretrainBlock, shape: tuple[int, int, int]):
    size, _, channels = shape
    inputs = keras.Input(shape=shape)
    x = keras.layers.Reshape((size, size * channels))(inputs)  # rows as a sequence
    x = keras.layers.LSTM(block.recurrent_units, return_sequences=True)(x)
    x = keras.layers.LSTM(block.recurrent_units)(x)
    encoder = keras.Model(inputs, float32_output(codings_layer(block)(x)), name="encoder")

    codings = keras.Input(shape=(block.codings,))
    x = keras.layers.RepeatVector(size)(codings)
    x = keras.layers.LSTM(block.recurrent_units, return_sequences=True)(x)
    x = keras.layers.Dense(size * channels, activation="sigmoid")(x)
    decoder = keras.Model(codings, float32_output(keras.layers.Reshape(shape)(x)), name="decoder")
    return encoder, decoder, []


def untie(decoder: keras.Model) -> keras.Model:
    """A copy of ``decoder`` with every DenseTranspose replaced by an equal plain Dense layer.

    The copy computes the same function and saves in Keras' native format on its own.
    """

    def clone(layer):
        if isinstance(layer, DenseTranspose):
            return keras.layers.Dense(layer.dense.kernel.shape[0],
                                      activation=layer.activation, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    plain = keras.models.clone_model(decoder, clone_function=clone)
    for source, target in zip(decoder.layers, plain.layers):
        if isinstance(source, DenseTranspose):
            kernel = keras.ops.convert_to_numpy(source.dense.kernel).T
            target.set_weights([kernel, keras.ops.convert_to_numpy(source.bias)])
        else:
            target.set_weights(source.get_weights())
    return plain


def random_view(name: str, channels: int = 1) -> keras.Sequential:
    """A random view of an image batch (drawn when called with training=True): horizontal flip,
    zoom in by up to 40 % or out by 10 %, shift by up to 15 %, contrast ± 40 %: the views the
    contrastive term pairs. Colour images also get their hue and saturation jittered and, one time
    in five, are turned grey: otherwise two views of an image share their colours, and the codings
    learn to tell images apart by colour alone (SimCLR's colour distortion)."""
    layers = [
        keras.layers.RandomFlip("horizontal"),
        jittable(keras.layers.RandomZoom((-0.4, 0.1), fill_mode="constant")),
        jittable(keras.layers.RandomTranslation(0.15, 0.15, fill_mode="constant")),
        keras.layers.RandomContrast(0.4, value_range=(0, 1)),
    ]
    if channels == 3:
        layers += [
            keras.layers.RandomColorJitter(value_range=(0, 1), saturation_factor=(0.1, 0.9),
                                           hue_factor=0.1),
            keras.layers.RandomGrayscale(0.2),
        ]
    return keras.Sequential(layers, name=name)


def augmenter(kind: str, shift: float) -> keras.Sequential | None:
    """Random shifts by up to ``shift`` of the side (and horizontal flips), or None."""
    if kind == "none":
        return None
    layers = [jittable(keras.layers.RandomTranslation(shift, shift, fill_mode="nearest"))]
    if kind == "shift_flip":
        layers.append(keras.layers.RandomFlip("horizontal"))
    return keras.Sequential(layers, name="augment")


class TrainingAutoencoder(keras.Model):
    """What `pretrain` trains when the plain autoencoder is not enough: each image, first moved
    at random when ``augment`` is set (in training only), is rebuilt as it is; with ``weight`` >
    0, ``weight`` × NT-Xent also pulls the codings of two random views of the same image together
    (through a small projection head, as in SimCLR) and those of different images apart.
    Reconstruction alone teaches the codings what a pixel-wise loss notices; the views teach them
    what a flip, a zoom, a shift or a change of colour leaves unchanged, which is what a
    classifier needs. The decoder rebuilds the image itself, not a view, so the codings keep what
    the views vary (colour above all) and the projection head is where it is dropped.
    """

    def __init__(self, ae: Autoencoder, weight: float, temperature: float,
                 augment: keras.Sequential | None = None, **kwargs):
        # No cast of the images to the precision policy's bfloat16: the reconstruction loss
        # compares the float32 output with them (the encoder casts them itself).
        super().__init__(autocast=False, **kwargs)
        self.encoder, self.decoder, self.noise = ae.encoder, ae.decoder, ae.noise
        self.weight, self.temperature, self.augment = weight, temperature, augment
        if weight:
            channels = ae.encoder.input_shape[-1]
            self.first = random_view("first_view", channels)
            self.second = random_view("second_view", channels)
            self.projection = keras.Sequential([keras.layers.Dense(128, activation="relu"),
                                                keras.layers.Dense(64, dtype="float32")],
                                               name="projection")
            # Built now, so the weights a resumed fit restores (and the optimizer is built for)
            # are all there before the first batch.
            self.projection.build((None, ae.encoder.output_shape[-1]))

    def call(self, x, training=None):
        if training and self.augment is not None:
            x = keras.ops.cast(self.augment(x, training=True), x.dtype)
        # The views are part of the objective, so they are drawn in validation too: the val loss
        # is the same objective on held-out images (with identical views it stops tracking it).
        views = [keras.ops.cast(view(x, training=True), x.dtype)
                 for view in (self.first, self.second)] if self.weight else []
        inputs = keras.ops.concatenate([x, *views], axis=0) if views else x
        if self.noise is not None:  # denoising: everything is encoded noisy, the image rebuilt clean
            inputs = self.noise(inputs, training=training)
        codings = self.encoder(inputs, training=training)
        n = keras.ops.shape(x)[0]
        rebuilt = self.decoder(codings[:n], training=training)
        z = self.projection(codings[n:], training=training) if self.weight else None
        return x, rebuilt, z

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        image, rebuilt, z = y_pred
        loss = keras.ops.mean(keras.ops.square(rebuilt - image))
        if self.weight:
            loss = loss + self.weight * nt_xent(z, self.temperature)
        for penalty in self.losses:  # the codings' sparsity penalty, if any
            loss = loss + penalty
        return loss
