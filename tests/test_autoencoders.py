"""Autoencoder builders and resumable training, on real digits (8×8×1)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

from latentlab.data.prepared import as_float, load_split
from latentlab.models.autoencoders import (
    TrainingAutoencoder,
    augmenter,
    build_autoencoder,
    nt_xent,
    random_view,
    untie,
)
from latentlab.models.classifier import build_classifier
from latentlab.models.layers import DenseTranspose
from latentlab.seeding import seed_everything
from latentlab.training.fit import fit_resumable
from latentlab.training.semi_supervised import FixMatch
from tests.support.data import make_params


@pytest.fixture(scope="module")
def digits(digits_prepared):
    images, labels = load_split(digits_prepared, "train")
    return as_float(images), labels


def block(**values):
    return make_params(pretrain={"codings": 6, "hidden_units": [16], "conv_filters": [8, 16],
                                 "recurrent_units": 12, **values}).pretrain


def weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


VARIANTS = [
    {},
    {"noise": "gaussian"},
    {"noise": "dropout"},
    {"sparsity": "l1"},
    {"sparsity": "kl"},
]


# Noise and sparsity wrap the input and the codings the same way whatever the body, so every
# variant runs on the conv body and every body runs plain (not the whole cross product).
CASES = [("conv", v) for v in VARIANTS] + [("dense", {}), ("recurrent", {})]


@pytest.mark.parametrize(("architecture", "variant"), CASES,
                         ids=lambda c: c if isinstance(c, str) else "-".join(c.values()) or "plain")
def test_every_architecture_and_variant_builds_and_trains_a_step(digits, architecture, variant):
    x = digits[0][:64]
    ae = build_autoencoder(block(architecture=architecture, **variant), x.shape[1:])
    assert ae.encoder.output_shape == (None, 6)
    assert ae.decoder.output_shape == (None, *x.shape[1:])
    ae.model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    before = weights(ae.model)
    loss = ae.model.train_on_batch(x, x)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights(ae.model)))


@pytest.mark.parametrize("extra", [{"tied_weights": True}, {"layerwise": True}, {}])
def test_dense_options_build_and_train(digits, extra):
    x = digits[0][:64]
    ae = build_autoencoder(block(architecture="dense", **extra), x.shape[1:])
    ae.model.compile("adam", loss="mse")
    assert np.isfinite(ae.model.train_on_batch(x, x))
    assert len(ae.layer_pairs) == 2  # (input → 16 units, 16 → 6 codings)


def test_tied_weights_share_the_encoders_kernels(digits):
    x = digits[0][:128]
    tied = build_autoencoder(block(architecture="dense", tied_weights=True), x.shape[1:])
    untied = build_autoencoder(block(architecture="dense"), x.shape[1:])
    transposes = [layer for layer in tied.decoder.layers if isinstance(layer, DenseTranspose)]
    assert len(transposes) == 2
    for layer in transposes:
        assert layer.dense.kernel is not None and layer.dense in tied.encoder.layers
    # Only the biases are the decoder's own: the kernels are counted once.
    kernels = 64 * 16 + 16 * 6
    assert untied.model.count_params() - tied.model.count_params() == kernels

    tied.model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    tied.model.fit(x, x, epochs=2, verbose=0)
    encoder_kernel = to_numpy(tied.encoder.get_layer("dense_0").kernel)
    # A trained encoder kernel is what the decoder applies, transposed: the export proves it.
    plain = untie(tied.decoder)
    assert np.allclose(to_numpy(plain.get_layer("tied_0").kernel), encoder_kernel.T)
    codings = tied.encoder.predict(x, verbose=0)
    assert np.allclose(plain.predict(codings, verbose=0), tied.decoder.predict(codings, verbose=0),
                       atol=1e-6)


def test_sparsity_lowers_the_mean_coding_activation(digits):
    x = digits[0]
    means = {}
    for sparsity in ("none", "kl", "l1"):
        seed_everything(0)
        b = block(architecture="dense", codings=16, sparsity=sparsity, sparsity_weight=0.5,
                  codings_activation="sigmoid")
        ae = build_autoencoder(b, x.shape[1:])
        ae.model.compile(keras.optimizers.Adam(1e-2), loss="mse")
        ae.model.fit(x, x, epochs=15, batch_size=64, verbose=0)
        means[sparsity] = float(ae.encoder.predict(x, verbose=0).mean())
    assert means["kl"] < 0.6 * means["none"], means
    assert means["l1"] < 0.6 * means["none"], means
    assert abs(means["kl"] - 0.1) < 0.08, means  # KL pulls towards the 0.1 target


def test_nt_xent_is_low_when_each_views_partner_is_its_nearest_and_high_when_not():
    z = np.eye(8, dtype="float32")[:4]  # four orthogonal codings; temperature 0.1: logits 10 or 0
    # Each row's partner scores 10, the 6 other rows 0 (the row itself is left out).
    matched = float(nt_xent(np.concatenate([z, z]), 0.1))
    assert matched == pytest.approx(np.log1p(6 * np.exp(-10)), rel=1e-3)
    # Partners swapped: each row's partner scores 0, while its own copy, now a negative, scores 10.
    swapped = float(nt_xent(np.concatenate([z, z[::-1]]), 0.1))
    assert swapped == pytest.approx(np.log(np.exp(10) + 5), rel=1e-5)


def test_the_contrastive_term_brings_two_views_of_an_image_together(digits):
    """How often an image's second view is nearer (cosine, on the codings) to its first view than
    another image's second view is: much more often with the contrastive term than with
    reconstruction alone."""
    x = digits[0][:512]
    ranked = {}
    for weight in (0.0, 1.0):
        seed_everything(0)
        ae = build_autoencoder(block(architecture="conv", codings=16), x.shape[1:])
        model = TrainingAutoencoder(ae, weight, 0.2)
        model.compile(keras.optimizers.Adam(3e-3))
        model.fit(x, epochs=10, batch_size=64, verbose=0)
        seed_everything(1)
        views = [to_numpy(ae.encoder(random_view(n)(x, training=True))) for n in ("a", "b")]
        a, b = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in views)
        similarity = a @ b.T
        ranked[weight] = float((np.diag(similarity)[:, None] > similarity).mean())
    assert ranked[1.0] > ranked[0.0] + 0.1, ranked


@pytest.mark.jax
def test_models_with_random_image_layers_compile_their_steps_on_jax(digits):
    """Keras turns `jit_compile` off for a whole model that holds a RandomZoom or a
    RandomTranslation (TensorFlow's image-transform op has no XLA kernel); on jax, such a model
    would train op by op. The contrastive autoencoder, FixMatch and the shifting classifier
    compile their steps on jax; on TensorFlow they are left as Keras has them (off on a CPU).
    On jax each then trains a step: the suite's jax run hides tensorflow, as a GPU machine
    lacks it (other tests train these models on TensorFlow)."""
    x, y = digits[0][:32], digits[1][:32]
    ae = build_autoencoder(block(architecture="conv", codings=16), x.shape[1:])
    shifting = build_classifier(ae.encoder, 10, 8, augment="shift_flip")
    for model, data in ((TrainingAutoencoder(ae, 1.0, 0.2), (x,)), (shifting, (x, y)),
                        (FixMatch(shifting, 0.95, 1.0), ((x, x[:, None]), y))):
        model.compile(keras.optimizers.Adam(), **({"loss": "sparse_categorical_crossentropy"}
                                                  if model is shifting else {}))
        assert model.jit_compile == (keras.backend.backend() == "jax"), model.name
        if keras.backend.backend() != "jax":
            continue
        before = weights(model)
        model.fit(*data, batch_size=32, epochs=1, verbose=0)
        assert any(not np.array_equal(a, b) for a, b in zip(before, weights(model))), model.name


def tint(x: np.ndarray) -> np.ndarray:
    """Grey images as colour ones, each multiplied by its own random colour."""
    return x * np.random.default_rng(0).uniform(0.2, 1.0, (len(x), 1, 1, 3)).astype("float32")


def test_the_contrastive_autoencoder_rebuilds_the_image_itself_not_a_view(digits):
    """Its reconstruction term is the plain autoencoder's loss on the image: a decoder asked to
    rebuild a colour-jittered view can only guess the colours, and rebuilt tinted pictures grey."""
    tinted = tint(digits[0][:64])
    ae = build_autoencoder(block(architecture="conv", codings=16), tinted.shape[1:])
    model = TrainingAutoencoder(ae, 0.0, 0.2)  # weight 0: the reconstruction term alone
    loss = float(model.compute_loss(y_pred=model(tinted, training=False)))
    plain = float(np.mean((to_numpy(ae.model(tinted, training=False)) - tinted) ** 2))
    assert loss == pytest.approx(plain, rel=1e-5)


def test_two_views_of_a_colour_image_do_not_share_its_colours(digits):
    """Digits tinted with random colours: told apart by their mean colour alone (chromaticity),
    two views of an image find each other almost always without colour distortion, so the
    contrastive term could be met by colour alone (it was, on a tinted 64×64 folder); with it,
    rarely. Grey images keep their one channel."""
    x = digits[0][:256]
    tinted = tint(x)

    def chromaticity(images):
        mean = images.mean(axis=(1, 2))
        return mean / (mean.sum(axis=1, keepdims=True) + 1e-6)

    found = {}
    for channels in (1, 3):  # the views of grey images vs those of colour images
        seed_everything(0)
        a, b = (chromaticity(to_numpy(random_view(n, channels)(tinted, training=True)))
                for n in "ab")
        distance = ((a[:, None] - b[None]) ** 2).sum(-1)
        found[channels] = float((distance.argmin(axis=1) == np.arange(len(x))).mean())
    assert found[1] > 0.8 and found[3] < 0.2, found
    assert random_view("grey", 1)(x, training=True).shape == x.shape


@pytest.mark.parametrize("noise", ["gaussian", "dropout"])
def test_denoising_noise_is_only_active_in_training(digits, noise):
    x = digits[0][:32]
    ae = build_autoencoder(block(architecture="conv", noise=noise, noise_level=0.5), x.shape[1:])
    clean = to_numpy(ae.decoder(ae.encoder(x)))
    inference = to_numpy(ae.model(x, training=False))
    assert np.allclose(inference, clean, atol=1e-6)
    assert np.allclose(to_numpy(ae.model(x, training=False)), inference)
    training = to_numpy(ae.model(x, training=True))
    assert not np.allclose(training, clean, atol=1e-4)


def test_freezing_the_encoder_freezes_it_and_unfreezing_trains_it(digits):
    x, y = digits[0][:128], digits[1][:128]
    ae = build_autoencoder(block(architecture="conv"), x.shape[1:])
    model = build_classifier(ae.encoder, 10, head_units=8)
    ae.encoder.trainable = False
    model.compile("adam", loss="sparse_categorical_crossentropy")
    encoder_before, model_before = weights(ae.encoder), weights(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(encoder_before, weights(ae.encoder)))
    head_changed = [not np.array_equal(a, b) for a, b in zip(model_before, weights(model))]
    # Every weight of the head (normalisation, hidden and output layers) moved, none of the encoder.
    assert sum(head_changed) == len(model.weights) - len(ae.encoder.weights) == 8

    ae.encoder.trainable = True
    model.compile("adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(encoder_before, weights(ae.encoder)))


class StopAfter(keras.callbacks.Callback):
    """Simulates a kill: raises once ``epochs`` epochs have ended (after they were checkpointed)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.seen = epochs, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if len(self.seen) == self.epochs:
            raise KeyboardInterrupt


def _model(x):
    seed_everything(0)
    ae = build_autoencoder(block(architecture="dense"), x.shape[1:])
    ae.model.compile(keras.optimizers.Adam(1e-3), loss="mse")
    return ae.model


@pytest.mark.jax
def test_an_interrupted_fit_resumes_from_the_last_epoch(digits, tmp_path):
    x = digits[0][:256]
    common = dict(directory=tmp_path / "ck", key="k1", epochs=5, batch_size=32,
                  validation_data=(x[:64], x[:64]))
    first = StopAfter(2)
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(_model(x), x, x, callbacks=(first,), **common)
    assert first.seen == [0, 1]

    model = _model(x)
    second = StopAfter(99)
    history = fit_resumable(model, x, x, callbacks=(second,), **common)
    assert second.seen == [2, 3, 4]  # continues at the third epoch, not from scratch
    assert len(history["loss"]) == len(history["val_loss"]) == 5
    assert history["loss"][2] < history["loss"][0]
    # The optimizer state came back too: Adam's step counter counts all five epochs.
    assert int(to_numpy(model.optimizer.iterations)) == 5 * 8

    # A finished fit is not repeated, and another key (other params or data) starts afresh.
    third = StopAfter(99)
    fit_resumable(_model(x), x, x, callbacks=(third,), **common)
    assert third.seen == []
    fresh = StopAfter(99)
    fit_resumable(_model(x), x, x, callbacks=(fresh,), **{**common, "key": "k2"})
    assert fresh.seen == [0, 1, 2, 3, 4]

    # More epochs continue the finished fit (the stages leave epochs out of the key); fewer
    # epochs than the checkpoint holds start afresh.
    model = _model(x)
    more = StopAfter(99)
    history = fit_resumable(model, x, x, callbacks=(more,), **{**common, "key": "k2", "epochs": 7})
    assert more.seen == [5, 6] and len(history["loss"]) == 7
    assert int(to_numpy(model.optimizer.iterations)) == 7 * 8
    fewer = StopAfter(99)
    fit_resumable(_model(x), x, x, callbacks=(fewer,), **{**common, "key": "k2", "epochs": 3})
    assert fewer.seen == [0, 1, 2]


def test_early_stopping_ends_on_the_best_weights(digits, tmp_path):
    x = digits[0][:256]
    model = _model(x)
    model.compile(keras.optimizers.Adam(5.0), loss="mse")  # diverges after the first epoch
    history = fit_resumable(model, x, x, directory=tmp_path / "ck", key="k", epochs=20,
                            batch_size=32, validation_data=(x[:64], x[:64]), patience=2)
    assert len(history["val_loss"]) < 20
    best = min(history["val_loss"])
    assert model.evaluate(x[:64], x[:64], verbose=0) == pytest.approx(best, rel=1e-4)


def test_an_augmented_autoencoder_rebuilds_each_image_as_moved_and_only_in_training(digits):
    x = tint(digits[0][:32])
    ae = build_autoencoder(block(architecture="conv", codings=16), x.shape[1:])
    model = TrainingAutoencoder(ae, 0.0, 0.2, augmenter("shift_flip", 0.25))
    seed_everything(0)
    moved, rebuilt, _ = model(x, training=True)
    assert not np.allclose(to_numpy(moved), x)  # the target is the moved image ...
    np.testing.assert_allclose(to_numpy(rebuilt), to_numpy(ae.model(to_numpy(moved))), atol=1e-5)
    same, _, _ = model(x, training=False)       # ... in training only
    np.testing.assert_array_equal(to_numpy(same), x)
    assert augmenter("none", 0.1) is None
