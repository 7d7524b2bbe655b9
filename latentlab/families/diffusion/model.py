"""A denoising diffusion model: the U-Net that predicts the noise in an image, and its schedule.

Time ``t`` runs from 0 (clean) to 1 (pure noise) on a cosine schedule (Nichol & Dhariwal 2021):
a noisy image is ``x_t = α x₀ + σ ε`` with ``α = cos φ``, ``σ = sin φ`` and the angle ``φ``
linear in ``t`` between those of ``max_signal`` and ``min_signal``. The network sees ``x_t``,
``t`` (as a sinusoidal embedding) and, class-conditional, the class (index ``n_classes`` is the
"no class" that classifier-free guidance samples against) and predicts ε or, with
``prediction=v``, ``v = α ε − σ x₀`` (Salimans & Ho 2022). Images are in [-1, 1].

The U-Net (Ho et al. 2020) follows the image size as the DCGAN does: one level per halving of
the side down to ≤ 7 (28: 28, 14, 7; 64: 64, 32, 16, 8, 4), each level ``blocks`` residual blocks
(GroupNorm, swish, the time embedding added in), self-attention at the lowest resolution, skip
connections across.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from latentlab.models.blocks import conv_widths
from latentlab.models.layers import TimeEmbedding


def unet_widths(spec, size: int, base: int) -> list[int]:
    """One width per level: ``spec``, or for "auto" ``base`` doubling (to ≤ 256) once per
    halving of the side down to ≤ 7, plus the lowest level."""
    if spec != "auto":
        return list(spec)
    halvings = conv_widths("auto", size, base)
    return [min(base * 2 ** i, 256) for i in range(len(halvings) + 1)]


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def _residual(x, embedding, width: int, name: str):
    skip = x if x.shape[-1] == width else keras.layers.Conv2D(width, 1, name=f"{name}_skip")(x)
    h = keras.layers.GroupNormalization(_groups(x.shape[-1]), name=f"{name}_norm1")(x)
    h = keras.layers.Activation("swish")(h)
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    shift = keras.layers.Dense(width, name=f"{name}_time")(embedding)
    h = h + keras.layers.Reshape((1, 1, width))(shift)
    h = keras.layers.GroupNormalization(_groups(width), name=f"{name}_norm2")(h)
    h = keras.layers.Activation("swish")(h)
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(h)
    return keras.layers.Add()([skip, h])


def _attention(x, name: str):
    side_h, side_w, width = x.shape[1:]
    h = keras.layers.GroupNormalization(_groups(width), name=f"{name}_norm")(x)
    h = keras.layers.Reshape((side_h * side_w, width))(h)
    h = keras.layers.MultiHeadAttention(4 if width % 4 == 0 else 1, max(width // 4, 1),
                                        name=f"{name}_mha")(h, h)
    h = keras.layers.Reshape((side_h, side_w, width))(h)
    return keras.layers.Add()([x, h])


def build_denoiser(image_shape: tuple[int, int, int], widths: list[int], blocks: int,
                   n_classes: int = 0) -> keras.Model:
    """The U-Net: inputs ``[noisy images, t (batch, 1)]`` (+ class index (batch,) when
    ``n_classes``), output the predicted ε or v, shaped like the images."""
    size, channels = image_shape[0], image_shape[2]
    noisy = keras.Input(shape=image_shape, name="noisy")
    t = keras.Input(shape=(1,), name="t")
    inputs = [noisy, t]
    dim = 4 * widths[0]
    # float32: in bfloat16, t (8 bits of mantissa) × 1000 would be off by radians
    embedding = TimeEmbedding(widths[0], name="time_embedding", dtype="float32")(t)
    embedding = keras.layers.Dense(dim, activation="swish", name="time_dense1")(embedding)
    embedding = keras.layers.Dense(dim, name="time_dense2")(embedding)
    if n_classes:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        # n_classes + 1 rows: the last is "no class" (classifier-free guidance).
        embedding = embedding + keras.layers.Embedding(n_classes + 1, dim, name="class")(label)
    embedding = keras.layers.Activation("swish")(embedding)

    x = keras.layers.Conv2D(widths[0], 3, padding="same", name="stem")(noisy)
    skips = []
    for level, width in enumerate(widths):
        for b in range(blocks):
            x = _residual(x, embedding, width, f"down{level}_{b}")
            skips.append(x)
        if level < len(widths) - 1:
            x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"down{level}")(x)
    x = _residual(x, embedding, widths[-1], "mid1")
    x = _attention(x, "mid_attention")
    x = _residual(x, embedding, widths[-1], "mid2")
    for level in reversed(range(len(widths))):
        if level < len(widths) - 1:
            x = keras.layers.UpSampling2D(2, name=f"up{level}")(x)
            extra = x.shape[1] - skips[-1].shape[1]  # an odd side was rounded up going down
            if extra:
                x = keras.layers.Cropping2D(((0, extra), (0, extra)))(x)
        for b in range(blocks):
            x = keras.layers.Concatenate()([x, skips.pop()])
            x = _residual(x, embedding, widths[level], f"up{level}_{b}")
    x = keras.layers.GroupNormalization(_groups(x.shape[-1]), name="out_norm")(x)
    x = keras.layers.Activation("swish")(x)
    out = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros",
                              name="out", dtype="float32")(x)
    assert out.shape[1] == size
    return keras.Model(inputs, out, name="denoiser")


# ---- the schedule (host-side numpy: the samplers and the training batches) --------------------

def angles(t: np.ndarray, min_signal: float, max_signal: float) -> np.ndarray:
    start, end = math.acos(max_signal), math.acos(min_signal)
    return start + np.asarray(t, dtype=np.float32) * (end - start)


def rates(t: np.ndarray, min_signal: float, max_signal: float) -> tuple[np.ndarray, np.ndarray]:
    """(α, σ) at times ``t``: signal and noise rates, α² + σ² = 1."""
    phi = angles(t, min_signal, max_signal)
    return np.cos(phi).astype(np.float32), np.sin(phi).astype(np.float32)


def split(prediction: str, noisy, output, alpha, sigma):
    """(x₀, ε) from the network's output at rates (α, σ), broadcast over images."""
    if prediction == "v":
        return alpha * noisy - sigma * output, sigma * noisy + alpha * output
    return (noisy - sigma * output) / alpha, output


def target(prediction: str, images, noise, alpha, sigma):
    """What the network learns to output for ``x_t = α images + σ noise``."""
    return alpha * noise - sigma * images if prediction == "v" else noise


# ---- sampling ------------------------------------------------------------------------------

def denoiser_call(model: keras.Model):
    """``(noisy, t, labels or None) -> output`` as numpy: the network in inference mode, compiled
    (Keras' ``predict_on_batch``: 1.7× eager calls on 2 CPU cores at batch 500; each batch size
    is compiled once)."""
    conditional = len(model.inputs) > 2

    def denoise(noisy, t, labels):
        inputs = [noisy, t] + ([labels] if conditional else [])
        return np.asarray(model.predict_on_batch(inputs))

    return denoise


def generate(denoise, shape: tuple[int, ...], n: int, seed: int, settings: dict, *,
             labels: np.ndarray | None = None, n_classes: int = 0, steps: int | None = None,
             eta: float | None = None, guidance: float | None = None,
             trajectory: bool = False, batch: int = 500):
    """``n`` images in [-1, 1] from noise, by DDIM (Song et al. 2021) over ``steps`` evenly spaced
    times from 1 to 0: ``eta`` 0 is deterministic, 1 is DDPM's ancestral sampling on the same
    times. A class-conditional model draws ``labels`` (uniform classes when None) with
    classifier-free guidance (Ho & Salimans 2022): output = unconditional + ``guidance`` ×
    (conditional − unconditional), so 0 is the unconditional model, 1 the conditional one; both
    predictions come from one network call on a doubled batch. ``settings`` is the model card's
    ``sampler`` (schedule, prediction, default steps, eta, guidance). With ``trajectory``, also
    the samples (of the first ``batch``) from their noise through every step, clipped to [-1, 1]:
    (steps + 1, n, H, W, C).
    """
    steps = settings["steps"] if steps is None else steps
    eta = settings["eta"] if eta is None else eta
    guidance = settings.get("guidance", 0.0) if guidance is None else guidance
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, *shape), dtype=np.float32)
    if n_classes and labels is None:
        labels = rng.integers(0, n_classes, n)
    times = np.linspace(1.0, 0.0, steps + 1, dtype=np.float32)
    alpha, sigma = rates(times, settings["min_signal"], settings["max_signal"])
    alpha[-1], sigma[-1] = 1.0, 0.0  # the last step lands on the clean image
    images, path = [], []
    for start in range(0, n, batch):
        x = noise[start:start + batch]
        b = len(x)
        if trajectory and start == 0:
            path.append(np.clip(x, -1.0, 1.0))
        y = None if not n_classes else np.asarray(labels[start:start + batch], dtype=np.int32)
        for i in range(steps):
            t = np.full((b, 1), times[i], dtype=np.float32)
            if n_classes and guidance != 1.0:
                null = np.full(b, n_classes, dtype=np.int32)
                if guidance == 0.0:
                    out = denoise(x, t, null)
                else:
                    both = denoise(np.concatenate([x, x]), np.concatenate([t, t]),
                                   np.concatenate([y, null]))
                    out = both[b:] + guidance * (both[:b] - both[b:])
            else:
                out = denoise(x, t, y)
            x0, _ = split(settings["prediction"], x, out, alpha[i], sigma[i])
            x0 = np.clip(x0, -1.0, 1.0)
            eps = (x - alpha[i] * x0) / sigma[i]  # the noise that the clipped x₀ implies
            a_next, s_next = alpha[i + 1], sigma[i + 1]
            if eta > 0 and s_next > 0:
                s_eta = eta * math.sqrt((s_next ** 2 / sigma[i] ** 2)
                                        * (1.0 - (alpha[i] / a_next) ** 2))
                s_eta = min(s_eta, float(s_next))
                x = (a_next * x0 + math.sqrt(s_next ** 2 - s_eta ** 2) * eps
                     + s_eta * rng.standard_normal(x.shape, dtype=np.float32))
            else:
                x = a_next * x0 + s_next * eps
            if trajectory and start == 0:
                path.append(np.clip(x, -1.0, 1.0))
        images.append(x)
    result = np.concatenate(images).astype(np.float32)
    return (result, np.stack(path)) if trajectory else result
