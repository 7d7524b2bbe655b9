"""Custom layers and regularizers shared by the model builders (backend-agnostic: keras.ops only)."""

from __future__ import annotations

import math

import keras
from keras import ops


def float32_output(x, name: str = "float32_out"):
    """``x`` cast to float32 by a layer of its own: the last layer of every network, so that
    losses, metrics and saved samples are float32 under the ``mixed_bfloat16`` policy too (a
    shape layer such as Reshape or Cropping2D casts a float32 input back to the policy's
    bfloat16, so the cast must come after it)."""
    return keras.layers.Activation("linear", dtype="float32", name=name)(x)


def jittable(layer: keras.layers.Layer) -> keras.layers.Layer:
    """``layer``, marked as compilable when the backend is jax.

    Keras marks its geometric image layers (RandomZoom, RandomTranslation, ...) as not
    XLA-compilable: true of the TensorFlow op they use, not of jax's. One such layer turns
    `jit_compile` off for the whole model, and on jax a `fit` then runs op by op: no step is
    compiled, and every op meets each new shape with a compilation of its own.
    """
    if keras.backend.backend() == "jax":
        layer.supports_jit = True
    return layer


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
        activations = ops.cast(activations, "float32")  # a loss term: float32 under any policy
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


@keras.saving.register_keras_serializable("latentlab")
class Sampling(keras.layers.Layer):
    """z = mean + exp(log_var / 2) · ε, ε ~ N(0, I): the reparameterisation trick.

    Samples in training and at inference alike (a VAE's encoder is stochastic).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        epsilon = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable("latentlab")
class MinibatchStdDev(keras.layers.Layer):
    """ProGAN's minibatch standard deviation: the mean over features of the per-feature std
    across the batch, appended as one more feature (a constant channel for image inputs).

    A batch of near-identical samples (mode collapse) gives ~0 here, which D can learn to spot.
    """

    def call(self, inputs):
        std = ops.sqrt(ops.var(inputs, axis=0) + 1e-8)
        stat = ops.mean(std)
        extra = ops.ones_like(inputs[..., :1]) * stat
        return ops.concatenate([inputs, extra], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


@keras.saving.register_keras_serializable("latentlab")
class MinibatchDiscrimination(keras.layers.Layer):
    """Salimans et al. (2016): for each sample, how close it is to the others of its batch.

    Features f (N, A) are projected by a learned tensor to M (N, B, C); for kernel b,
    o_b(i) = Σ_{j≠i} exp(−‖M_ib − M_jb‖₁). The B closeness scores are appended to f.
    """

    def __init__(self, kernels: int = 50, kernel_dim: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.kernels, self.kernel_dim = kernels, kernel_dim

    def build(self, input_shape):
        self.tensor = self.add_weight(
            name="tensor", shape=(input_shape[-1], self.kernels * self.kernel_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.05),
        )

    def call(self, inputs):
        m = ops.reshape(ops.matmul(inputs, self.tensor), (-1, self.kernels, self.kernel_dim))
        distances = ops.sum(ops.abs(ops.expand_dims(m, 0) - ops.expand_dims(m, 1)), axis=-1)
        closeness = ops.sum(ops.exp(-distances), axis=1) - 1.0  # minus exp(0) for j = i
        return ops.concatenate([inputs, closeness], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.kernels)

    def get_config(self) -> dict:
        return {**super().get_config(), "kernels": self.kernels, "kernel_dim": self.kernel_dim}


class _SpectralNorm:
    """Mixin for Dense/Conv2D: the kernel divided by its largest singular value, estimated by one
    power-iteration step per training call (Miyato et al. 2018).

    Unlike `keras.layers.SpectralNormalization`, the stored kernel is never overwritten: only the
    power-iteration vector ``u`` (non-trainable) is updated, in training calls, so a network
    frozen for the other player's step keeps its weights, the same on every backend.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.sn_u = self.add_weight(shape=(1, self.kernel.shape[-1]), name="sn_u",
                                    initializer=keras.initializers.RandomNormal(seed=0),
                                    trainable=False)

    def normalized_kernel(self, training):
        w = ops.reshape(self.kernel, (-1, self.kernel.shape[-1]))
        u = ops.stop_gradient(self.sn_u)
        v = _l2_normalize(ops.matmul(u, ops.transpose(w)))
        u_new = _l2_normalize(ops.matmul(v, w))
        u_new, v = ops.stop_gradient(u_new), ops.stop_gradient(v)
        sigma = ops.sum(ops.matmul(v, w) * u_new)
        if training:
            self.sn_u.assign(u_new)
        return self.kernel / sigma

    # Dense and Conv2D save only their kernel and bias (a layout made for quantization); the
    # generic layout saves every variable, ``sn_u`` included.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


def _l2_normalize(x):
    return x / ops.sqrt(ops.sum(ops.square(x)) + 1e-12)


@keras.saving.register_keras_serializable("latentlab")
class SNDense(_SpectralNorm, keras.layers.Dense):
    def call(self, inputs, training=None):
        x = ops.matmul(inputs, self.normalized_kernel(training))
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x


@keras.saving.register_keras_serializable("latentlab")
class SNConv2D(_SpectralNorm, keras.layers.Conv2D):
    def call(self, inputs, training=None):
        x = ops.conv(inputs, self.normalized_kernel(training), strides=self.strides,
                     padding=self.padding, data_format=self.data_format,
                     dilation_rate=self.dilation_rate)
        if self.use_bias:
            x = x + self.bias
        return self.activation(x) if self.activation is not None else x


@keras.saving.register_keras_serializable("latentlab")
class GatedLinearUnit(keras.layers.Layer):
    """The first half of the channels times the sigmoid of the second half (Dauphin et al.
    2017): one conv of 2C channels gates itself down to C."""

    def call(self, x):
        value, gate = ops.split(x, 2, axis=-1)
        return value * ops.sigmoid(gate)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.saving.register_keras_serializable("latentlab")
class TimeEmbedding(keras.layers.Layer):
    """``t`` in [0, 1] (shape (batch, 1)) → sinusoids at ``dim // 2`` geometric frequencies."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10_000.0) / half))
        angles = 1000.0 * ops.cast(t, "float32") * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * (self.dim // 2))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def nt_xent(z, temperature: float):
    """SimCLR's loss (Chen et al. 2020) for ``z`` = [first views; second views]: each row's
    positive is its other view, every other row in the batch a negative."""
    z = keras.ops.normalize(z, axis=-1)
    n = keras.ops.shape(z)[0]
    half = n // 2
    logits = keras.ops.matmul(z, keras.ops.transpose(z)) / temperature - 1e9 * keras.ops.eye(n)
    targets = keras.ops.concatenate([keras.ops.arange(half) + half, keras.ops.arange(half)], 0)
    return keras.ops.mean(
        keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))
