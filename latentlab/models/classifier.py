"""Classifiers on top of an encoder: the fine-tuning and from-scratch models share one builder."""

from __future__ import annotations

import keras

from latentlab.models.layers import float32_output, jittable


def build_classifier(encoder: keras.Model, n_classes: int, head_units: int,
                     augment: str = "none", shift: float = 0.1) -> keras.Model:
    """``encoder`` followed by a small head (one hidden layer of ``head_units``, 0 = none).

    ``augment`` adds random shifts (``shift``) and/or horizontal flips in front of the encoder,
    active in training only. The head normalises the codings first, whatever their scale.
    """
    inputs = keras.Input(shape=encoder.input_shape[1:], name="image")
    x = inputs
    if augment in ("shift", "shift_flip"):
        x = jittable(keras.layers.RandomTranslation(shift, shift, fill_mode="constant",
                                                    name="shift"))(x)
    if augment == "shift_flip":
        x = keras.layers.RandomFlip("horizontal", name="flip")(x)
    x = encoder(x)
    x = keras.layers.BatchNormalization(name="head_norm")(x)
    if head_units:
        x = keras.layers.Dense(head_units, activation="relu", name="head_hidden")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="head_out",
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name="classifier")


def without_penalties(encoder: keras.Model) -> keras.Model:
    """Drop activity penalties (sparsity): they shaped pretraining, not the classifier's loss."""
    for layer in encoder.layers:
        if getattr(layer, "activity_regularizer", None) is not None:
            layer.activity_regularizer = None
    return encoder


def fresh_copy(encoder: keras.Model) -> keras.Model:
    """The same architecture, newly initialised (the from-scratch baseline)."""
    return keras.models.clone_model(encoder)


def build_evaluator(image_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """A small CNN for the domain: trained on the full labeled train split, it classifies generated
    samples (mode coverage) and supplies the feature space of the generation metrics."""
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for i, filters in enumerate((32, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    # float32 under any precision policy: the generation metrics' feature space, and the classes
    x = keras.layers.Dense(128, activation="relu", name="features_dense")(x)
    features = float32_output(x, name="features")
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classes",
                                 dtype="float32")(features)
    return keras.Model(inputs, outputs, name="evaluator")
