"""One seed drives every random number generator a stage uses."""

from __future__ import annotations

import random
import sys

import keras
import numpy as np


def _keep_tensorflow_out() -> None:
    """On a backend other than TensorFlow, tell Keras that TensorFlow is absent.

    Keras imports TensorFlow whenever it is installed, to seed tf.data (`set_random_seed`) and to
    type-check objects when saving a model; nothing here uses it on jax, and the import costs
    seconds per stage. A TensorFlow imported on purpose (TFDS) is left alone.
    """
    from keras.src.utils import module_utils

    if "tensorflow" not in sys.modules and getattr(module_utils.tensorflow, "module", None) is None:
        module_utils.tensorflow._available = False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and the Keras backend; make TensorFlow's ops deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() != "tensorflow":
        _keep_tensorflow_out()
        keras.utils.set_random_seed(seed)
        return
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
