"""One seed drives every random number generator a stage uses."""

from __future__ import annotations

import random

import keras


def seed_everything(seed: int) -> None:
    """Seed python, numpy and the Keras backend; make TensorFlow's ops deterministic."""
    random.seed(seed)
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
