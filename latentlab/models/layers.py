"""Custom layers and regularizers shared by the model builders (backend-agnostic: keras.ops only)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable("latentlab")
class Sparsity(keras.regularizers.Regularizer):
    """An activity penalty that pushes codings towards sparsity.

    ``kind="l1"``: ``weight`` × mean over the batch of Σ|a|.
    ``kind="kl"``: ``weight`` × Σ over units of KL(target ‖ mean activation over the batch); the
    activations must lie in (0, 1), e.g. sigmoid codings.
    """

    def __init__(self, kind: str, weight: float, target: float = 0.1):
        if kind not in ("l1", "kl"):
            raise ValueError(f"sparsity kind must be 'l1' or 'kl', got {kind!r}")
        self.kind, self.weight, self.target = kind, float(weight), float(target)

    def __call__(self, activations):
        if self.kind == "l1":
            return self.weight * ops.mean(ops.sum(ops.abs(activations), axis=-1))
        eps = 1e-7
        mean = ops.clip(ops.mean(activations, axis=0), eps, 1.0 - eps)
        t = self.target
        kl = t * ops.log(t / mean) + (1.0 - t) * ops.log((1.0 - t) / (1.0 - mean))
        return self.weight * ops.sum(kl)

    def get_config(self) -> dict:
        return {"kind": self.kind, "weight": self.weight, "target": self.target}


class DenseTranspose(keras.layers.Layer):
    """A dense layer whose kernel is another Dense layer's kernel, transposed (tied weights).

    Only the bias is its own. It holds the other layer, so it lives inside the autoencoder being
    trained; `untie` turns a decoder of these into plain Dense layers for export.
    """

    def __init__(self, dense: keras.layers.Dense, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.bias = self.add_weight(
            name="bias", shape=(self.dense.kernel.shape[0],), initializer="zeros"
        )

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, ops.transpose(self.dense.kernel)) + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.dense.kernel.shape[0])
