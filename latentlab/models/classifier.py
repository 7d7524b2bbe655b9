"""Classifiers on top of an encoder: the fine-tuning and from-scratch models share one builder."""

from __future__ import annotations

import keras

from latentlab.models.layers import float32_output, jittable, nt_xent


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


def feature_net(image_shape: tuple[int, int, int]) -> keras.Model:
    """The judge's feature extractor: a small CNN from an image to 128 float32 features, the space
    the generation metrics measure in (no Inception weights can or need be downloaded)."""
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(128, activation="relu", name="features_dense")(x)
    return keras.Model(inputs, float32_output(x, name="features"), name="features")


def build_evaluator(image_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """The supervised judge: `feature_net` and a softmax, trained on the full labeled train split;
    it also classifies generated samples (mode coverage)."""
    features = feature_net(image_shape)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classes",
                                 dtype="float32")(features.output)
    return keras.Model(features.input, outputs, name="evaluator")


def evaluator_features(classifier: keras.Model) -> keras.Model:
    """The supervised evaluator's feature extractor: its input up to the layer named "features"."""
    return keras.Model(classifier.inputs, classifier.get_layer("features").output, name="features")


def judge_view(name: str, channels: int) -> keras.Sequential:
    """A random view for the label-free judge: flip, zoom, shift and contrast, and for colour
    images a slight hue and saturation jitter. Milder in colour than SimCLR's views (no grey
    views): a judge of generated images must see colour, so its features may not be blind to it."""
    layers = [
        keras.layers.RandomFlip("horizontal"),
        jittable(keras.layers.RandomZoom((-0.3, 0.1), fill_mode="constant")),
        jittable(keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant")),
        keras.layers.RandomContrast(0.3, value_range=(0, 1)),
    ]
    if channels == 3:
        layers.append(keras.layers.RandomColorJitter(value_range=(0, 1),
                                                     saturation_factor=(0.35, 0.65),
                                                     hue_factor=0.03))
    return keras.Sequential(layers, name=name)


class ContrastiveJudge(keras.Model):
    """The label-free judge: `feature_net` trained with NT-Xent (SimCLR, Chen et al. 2020) to
    map two random views of an image close together and other images apart, through a projection
    head that is dropped afterwards. It never sees a label."""

    def __init__(self, image_shape: tuple[int, int, int], temperature: float = 0.2, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.features = feature_net(tuple(image_shape))
        self.temperature = temperature
        self.first = judge_view("first_view", image_shape[-1])
        self.second = judge_view("second_view", image_shape[-1])
        self.projection = keras.Sequential([keras.layers.Dense(128, activation="relu"),
                                            keras.layers.Dense(64, dtype="float32")],
                                           name="projection")
        self.projection.build((None, 128))

    def call(self, x, training=None):
        # Views in validation too: the val loss is the same objective on held-out images.
        views = keras.ops.concatenate([keras.ops.cast(view(x, training=True), x.dtype)
                                       for view in (self.first, self.second)], axis=0)
        return self.projection(self.features(views, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return nt_xent(y_pred, self.temperature)
