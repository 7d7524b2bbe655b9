"""Semi-supervised fine-tuning: the labeled subset plus the unlabeled train images (FixMatch,
Sohn et al. 2020), for the label-efficiency curve.

Each step takes a batch of labeled images (a weak view: flip and shift) and ``ratio`` times as
many unlabeled ones. Where the classifier's prediction on a weak view of an unlabeled image
reaches ``threshold``, its top class becomes the target for a strong view of that image (the
weak view, then random erasing and contrast), weighted by ``weight``. All views go through the
network as one batch, so BatchNorm sees them together. The unlabeled images are only ever images:
this module is given the labels of the labeled subset and nothing else.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from latentlab.data.prepared import as_float
from latentlab.models.layers import jittable
from latentlab.params import FinetuneBlock


def weak_view() -> list[keras.layers.Layer]:
    return [keras.layers.RandomFlip("horizontal"),
            jittable(keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant"))]


class FixMatch(keras.Model):
    """Wraps a classifier: inputs (labeled batch, unlabeled groups of ``ratio``), one loss."""

    def __init__(self, classifier: keras.Model, threshold: float, weight: float, **kwargs):
        super().__init__(**kwargs)
        self.classifier, self.threshold, self.weight = classifier, threshold, weight
        self.weak = keras.Sequential(weak_view(), name="weak_view")
        self.strong = keras.Sequential([
            *weak_view(),
            keras.layers.RandomErasing(factor=1.0, scale=(0.05, 0.3), value_range=(0, 1)),
            keras.layers.RandomContrast(0.5, value_range=(0, 1))], name="strong_view")

    def call(self, inputs, training=None):
        labeled, unlabeled = inputs
        unlabeled = ops.reshape(unlabeled, (-1, *labeled.shape[1:]))
        b, n = ops.shape(labeled)[0], ops.shape(unlabeled)[0]
        x = ops.concatenate([self.weak(labeled, training=training),
                             self.weak(unlabeled, training=training),
                             self.strong(unlabeled, training=training)], axis=0)
        p = self.classifier(x, training=training)
        return p[:b], p[b:b + n], p[b + n:]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labeled, weak, strong = y_pred
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, labeled))
        weak = ops.stop_gradient(weak)
        mask = ops.cast(ops.max(weak, axis=-1) >= self.threshold, "float32")
        pseudo = ops.argmax(weak, axis=-1)
        return loss + self.weight * ops.mean(
            mask * keras.losses.sparse_categorical_crossentropy(pseudo, strong))


class _Steps(keras.utils.PyDataset):
    """One training step a batch: labeled images in a seeded order, unlabeled ones drawn at
    random, read (e.g. from a memory map) only when their step comes."""

    def __init__(self, x, y, unlabeled, steps: int, batch: int, ratio: int, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(len(x)) for _ in range(-(-steps * batch // len(x)))])
        self.x, self.y, self.unlabeled, self.batch, self.ratio = x, y, unlabeled, batch, ratio
        self.order = order[:steps * batch].reshape(steps, batch)
        self.drawn = rng.integers(0, len(unlabeled), (steps, batch * ratio))

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, step: int):
        index, drawn = self.order[step], self.drawn[step]
        sorted_drawn = np.sort(drawn)  # memory maps read faster in order; put back after
        pool = as_float(self.unlabeled[sorted_drawn])[np.argsort(np.argsort(drawn))]
        pool = pool.reshape(self.batch, self.ratio, *self.x.shape[1:])
        return (self.x[index], pool), self.y[index]


def fixmatch(classifier: keras.Model, x: np.ndarray, y: np.ndarray, unlabeled: np.ndarray,
             block: FinetuneBlock, learning_rate: float, seed: int) -> keras.Model:
    """Train ``classifier`` (its whole network) for ``block.semi_steps`` steps on the labeled
    ``x``, ``y`` (floats in [0, 1]) and the images ``unlabeled`` (uint8, e.g. memory-mapped: only
    the drawn ones are read); returns it."""
    steps = _Steps(x, y, unlabeled, block.semi_steps, block.batch_size, block.semi_ratio, seed)
    model = FixMatch(classifier, block.semi_threshold, block.semi_weight)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(steps, epochs=1, verbose=0, shuffle=False)
    return classifier
