"""VAE and GAN models and training steps, on real digits. Run under both Keras backends:
`tests/test_backends.py` reruns this file with KERAS_BACKEND=jax and tensorflow blocked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from latentlab.data.prepared import load_split
from latentlab.families.gan.model import build_gan
from latentlab.families.gan.replay import ImagePool
from latentlab.families.gan.training import GanTrainer
from latentlab.families.vae.model import architecture, build_vae
from latentlab.families.vae.training import VaeTrainer
from latentlab.models.blocks import conv_widths
from latentlab.models.layers import MinibatchDiscrimination, MinibatchStdDev, SNConv2D, SNDense
from latentlab.precision import choose, hardware
from latentlab.seeding import seed_everything
from latentlab.training import diffaugment, shim
from latentlab.training.budget import plan
from latentlab.training.checkpoint import Checkpoint
from latentlab.training.loop import Diverged, Progress, load_checkpoint, run_epochs
from latentlab.training.stage import to_signed_range
from stages import download, downsample, train
from tests.support.data import make_params, make_rgba_sprites, passes
from tests.support.project import ROOT

SHAPE = (8, 8, 1)
TINY_GAN = {"filters": [8, 16], "latent": 8, "hidden_units": [16, 32], "batch_size": 16,
            **passes(2), "grid_size": 4, "minibatch_kernels": 4, "minibatch_kernel_dim": 3}
TINY_VAE = {"latent": 4, "hidden_units": [32, 16], "conv_filters": [8, 16], **passes(2),
            "batch_size": 64, "grid_size": 4}

AUTO = choose("auto", hardware()).precision  # what the stages train in on this machine


def gan_block(**values):
    return make_params(train_gan={**TINY_GAN, **values}).train_gan


def numpy_state(net_state: dict) -> dict:
    return {kind: [np.array(keras.ops.convert_to_numpy(v)) for v in vs]
            for kind, vs in net_state.items()}


def changed(before: dict, after: dict, kind: str = "trainable") -> list[bool]:
    return [not np.array_equal(a, b) for a, b in zip(before[kind], after[kind])]


@pytest.fixture(scope="module")
def digits(digits_prepared):
    images, labels = load_split(digits_prepared, "train")
    return np.asarray(images), labels


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_vae_shapes_and_sampling_noise_in_training_and_generation(digits, architecture):
    block = make_params(train_vae={**TINY_VAE, "architecture": architecture}).train_vae
    vae = build_vae(block, SHAPE, seed=0)
    x = digits[0][:16].astype("float32") / 255
    mean, log_var, z = vae.encoder(x)
    assert mean.shape == log_var.shape == z.shape == (16, 4)
    assert vae.decoder(z).shape == (16, *SHAPE)
    # The sampling noise stays on outside training: two encodings of one image differ.
    z1 = keras.ops.convert_to_numpy(vae.encoder(x, training=False)[2])
    z2 = keras.ops.convert_to_numpy(vae.encoder(x, training=False)[2])
    assert not np.allclose(z1, z2)


def test_vae_auto_architecture_follows_the_images():
    block = make_params(train_vae=TINY_VAE).train_vae
    assert block.architecture == "auto" and architecture(block, (28, 28, 1)) == "dense"
    assert architecture(block, (64, 64, 3)) == "conv" and architecture(block, (32, 32, 1)) == "conv"
    assert architecture(make_params(train_vae={"architecture": "dense"}).train_vae,
                        (64, 64, 3)) == "dense"


def test_a_64px_colour_vae_keeps_its_kl_small_from_the_first_epoch(tmp_path):
    make_rgba_sprites(tmp_path / "sprites", 120, size=64, bar=True)
    params = make_params(data={"source": "folder", "local_dir": str(tmp_path / "sprites")},
                         downsample={"image_size": 64, "channels": 3, "workers": 1},
                         # dense, the worst case: its first layer sees all 12,288 values
                         train_vae={"architecture": "dense", "images_seen": 1_000,
                                    "min_epoch_images": 500, "batch_size": 32})
    download.run(params, tmp_path / "raw")
    downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    out = [tmp_path / k for k in ("models", "ck", "m.json", "h.csv", "samples")]
    train.run(params, "vae", tmp_path / "prepared", *out)
    rows = (tmp_path / "h.csv").read_text().splitlines()
    header, first = rows[0].split(","), dict(zip(rows[0].split(","), map(float, rows[1].split(","))))
    assert "kl" in header and 0 < first["kl"] < 1_000, first  # random log-variance weights: ~1e11
    assert first["val_loss"] < 1.0


@pytest.mark.parametrize("optimizer", [pytest.param("adam", marks=pytest.mark.jax), "nadam"])
def test_vae_step_lowers_the_loss(digits, optimizer):
    block = make_params(train_vae={**TINY_VAE, "optimizer": optimizer}).train_vae
    trainer = VaeTrainer(build_vae(block, SHAPE, 0), block, SHAPE, 0)
    assert type(trainer.nets["vae"].optimizer).__name__.lower() == optimizer
    state = trainer.initial_state()
    before = trainer.evaluate(state, digits[0][:256])
    for _ in range(30):
        state, logs = trainer.train_step(state, digits[0][:256].astype("float32") / 255)
    after = trainer.evaluate(state, digits[0][:256])
    assert after["loss"] < before["loss"]
    assert after["loss"] == pytest.approx(after["reconstruction"] + after["kl"] / 64, rel=1e-4)


@pytest.mark.parametrize("architecture", ["dcgan", "dense"])
@pytest.mark.parametrize("conditional", [0, 10])
def test_gan_shapes(architecture, conditional):
    gan = build_gan(gan_block(architecture=architecture), SHAPE, conditional)
    noise = keras.ops.zeros((5, 8))
    labels = keras.ops.convert_to_tensor(np.eye(10, dtype="float32")[:5])
    g_in = [noise, labels] if conditional else noise
    fake = gan.generator(g_in)
    assert fake.shape == (5, *SHAPE)
    assert gan.discriminator([fake, labels] if conditional else fake).shape == (5, 1)


@pytest.mark.parametrize(("size", "channels", "blocks"), [(28, 1, 2), (32, 3, 3), (64, 3, 4),
                                                          (128, 3, 5)])
def test_the_dcgan_follows_the_image_size(size, channels, blocks):
    # The 28×28 defaults are the fixed widths they replace, so the default run is unchanged.
    assert conv_widths("auto", 28, 64) == [64, 128] and conv_widths("auto", 28, 32) == [32, 64]
    # Noise projected to 4×4 (7×7 at 28), then one stride-2 block per doubling; D mirrors G.
    for upsample in ("transpose", "resize"):
        gan = build_gan(gan_block(filters="auto", upsample=upsample, spectral_norm=True),
                        (size, size, channels))
        assert gan.generator.output_shape == (None, size, size, channels)
        assert gan.discriminator.output_shape == (None, 1)
        reshaped = next(layer for layer in gan.generator.layers
                        if isinstance(layer, keras.layers.Reshape))
        assert reshaped.target_shape[0] == (7 if size == 28 else 4)
        kind = keras.layers.Conv2DTranspose if upsample == "transpose" else keras.layers.UpSampling2D
        assert sum(isinstance(layer, kind) for layer in gan.generator.layers) == blocks
        normed = [layer for layer in gan.discriminator.layers
                  if isinstance(layer, (SNConv2D, SNDense))]
        assert len(normed) == blocks + 1  # every conv and the logit


def test_spectral_norm_bounds_the_largest_singular_value_and_saves(tmp_path):
    # Seeded: the kernel and the power iteration's start vector come from Keras's global RNG,
    # which otherwise depends on the tests run before this one.
    seed_everything(0)
    x = np.random.default_rng(0).random((4, 6, 6, 3)).astype("float32")
    inputs = keras.Input((6, 6, 3))
    conv = SNConv2D(5, 3, padding="same")
    model = keras.Model(inputs, SNDense(1)(keras.layers.Flatten()(conv(inputs))))
    conv.kernel.assign(conv.kernel * 40.0)
    stored = keras.ops.convert_to_numpy(conv.kernel).copy()
    for _ in range(30):  # power iteration: one step per training call
        model(x, training=True)
    kernel = keras.ops.convert_to_numpy(conv.normalized_kernel(False)).reshape(-1, 5)
    assert np.linalg.svd(kernel, compute_uv=False)[0] == pytest.approx(1.0, abs=0.02)
    assert np.array_equal(keras.ops.convert_to_numpy(conv.kernel), stored)  # never overwritten
    model.save(tmp_path / "d.keras")
    again = keras.models.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-5)


def _batch(trainer, digits, rng):
    images, labels = digits
    index = np.arange(trainer.block.batch_size)
    return trainer.host_batch(rng, to_signed_range(images[index]), labels[index], 0.0)


@pytest.mark.parametrize(("loss", "extra"), [
    ("nonsaturating", {}), pytest.param("wgan_gp", {}, marks=pytest.mark.jax),
    ("nonsaturating", {"spectral_norm": True, "upsample": "resize"}),
])
def test_a_step_trains_d_then_g_each_with_the_other_frozen(digits, loss, extra):
    block = gan_block(loss=loss, **extra)
    trainer = GanTrainer(build_gan(block, SHAPE), block, seed=0)
    state = trainer.initial_state()
    batch = _batch(trainer, digits, np.random.default_rng(0))

    g0, d0 = numpy_state(state["generator"]), numpy_state(state["discriminator"])
    fake = trainer.generate(state, batch["noise_d"][0], None)
    state, logs = trainer.d_update(state, batch, fake, None)
    g1, d1 = numpy_state(state["generator"]), numpy_state(state["discriminator"])
    d_changed = changed(d0, d1)
    if loss == "wgan_gp":  # the critic's output bias cancels in E[D(fake)] − E[D(real)]
        assert d_changed[-1] is False
        d_changed = d_changed[:-1]
    assert all(d_changed) and not any(changed(g0, g1))

    state, g_loss = trainer.g_update(state, batch["noise_g"], None, {})
    g2, d2 = numpy_state(state["generator"]), numpy_state(state["discriminator"])
    assert all(changed(g1, g2)) and not any(changed(d1, d2))
    assert np.isfinite(float(keras.ops.convert_to_numpy(g_loss)))


def test_diffaugment_is_differentiable_and_moves_pixels_as_drawn():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 16, 16, 3)).astype("float32")
    params = diffaugment.draw(rng, 6, 16, diffaugment.PARTS)
    weights = rng.standard_normal(x.shape).astype("float32")
    grad = keras.ops.convert_to_numpy(shim.input_gradient(
        lambda v: diffaugment.apply(v, params) * weights, keras.ops.convert_to_tensor(x)))
    assert np.isfinite(grad).all() and (np.abs(grad).reshape(6, -1).sum(1) > 0).all()
    # A translation moves the image by the drawn shift and fills with zeros (mid-grey).
    shift = {"rows": diffaugment._shift_matrices(np.array([2]), 16),
             "columns": diffaugment._shift_matrices(np.array([-3]), 16)}
    moved = keras.ops.convert_to_numpy(diffaugment.apply(x[:1], shift))[0]
    assert np.array_equal(moved[2:, :13], x[0, :14, 3:])
    assert not moved[:2].any() and not moved[:, 13:].any()
    # Cutout zeroes a square of half the side in each image; colour moves every pixel.
    keep = diffaugment.draw(rng, 50, 16, ("cutout",))["keep"]
    assert ((1 - keep).reshape(50, -1).sum(1) <= 64).all() and (1 - keep).sum() > 50 * 16
    colour = keras.ops.convert_to_numpy(diffaugment.apply(x, diffaugment.draw(rng, 6, 16, ("color",))))
    assert (np.abs(colour - x).reshape(6, -1).max(1) > 0.01).all()


def test_diffaugment_applies_one_policy_to_real_and_fake_and_reaches_both_losses(digits):
    block = gan_block(diffaugment=["color", "translation", "cutout"])
    trainer = GanTrainer(build_gan(block, SHAPE), block, seed=0)
    state = trainer.initial_state()
    batch = _batch(trainer, digits, np.random.default_rng(0))
    b = block.batch_size
    d_draws, g_draws = batch["augment_d"], batch["augment_g"]
    assert set(d_draws) == set(g_draws) == {"brightness", "saturation", "contrast", "rows",
                                            "columns", "keep"}
    assert all(len(v) == 2 * b for v in d_draws.values())  # D's real half, then its fake half
    assert all(len(v) == b for v in g_draws.values())
    fake = trainer.generate(state, batch["noise_d"][0], None)
    plain = {k: v for k, v in batch.items() if not k.startswith("augment")}

    def d_loss(batch):
        _, logs = trainer.d_update(state, batch, fake, None)
        return float(keras.ops.convert_to_numpy(logs["d_loss"]))

    def g_loss(augment):
        return float(keras.ops.convert_to_numpy(trainer.g_update(state, batch["noise_g"], None,
                                                                 augment)[1]))

    assert d_loss(batch) != pytest.approx(d_loss(plain), abs=1e-6)
    assert g_loss(g_draws) != pytest.approx(g_loss({}), abs=1e-6)
    # The same draw for a real and a fake image gives D the same input: one policy for both.
    same = {k: np.concatenate([v[:b], v[:b]]) for k, v in d_draws.items()}
    twins = {**batch, "augment_d": same}
    _, logs = trainer.d_update(state, {**twins, "real": keras.ops.convert_to_numpy(fake)}, fake,
                               None)
    assert float(keras.ops.convert_to_numpy(logs["d_real"])) == pytest.approx(
        float(keras.ops.convert_to_numpy(logs["d_fake"])), abs=1e-4)


def test_replay_pool_fills_then_swaps_half_the_time():
    rng = np.random.default_rng(0)
    pool = ImagePool(size=4)
    first = np.arange(4, dtype=np.float32).reshape(4, 1)
    out, labels = pool.query(first, np.arange(4), rng)
    assert np.array_equal(out, first) and len(pool) == 4  # filling: returned as given
    returned_old = 0
    for step in range(50):
        new = np.full((4, 1), 100.0 + step, dtype=np.float32)
        out, labels = pool.query(new, np.full(4, 7), rng)
        assert len(pool) == 4
        old = out[:, 0] != 100.0 + step
        returned_old += int(old.sum())
        # Whatever came back from the pool, its label came with it.
        assert np.all((labels == 7) == (out[:, 0] >= 100) | ~old)
    assert 60 < returned_old < 140  # about half of 200
    restored = ImagePool.restore(4, pool.state())
    assert np.array_equal(restored.images, pool.images)


@pytest.mark.parametrize("layer", [MinibatchStdDev(), MinibatchDiscrimination(6, 3)])
def test_minibatch_layers_see_a_batch_without_diversity(layer):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((8, 12)).astype("float32")
    same = np.repeat(features[:1], 8, axis=0)
    diverse_out = keras.ops.convert_to_numpy(layer(features))
    same_out = keras.ops.convert_to_numpy(layer(same))
    # The first sample is identical in both batches; only its batch-mates differ.
    assert np.allclose(diverse_out[0, :12], same_out[0, :12])
    assert not np.allclose(diverse_out[0, 12:], same_out[0, 12:])


@pytest.mark.parametrize("minibatch", ["stddev", "discrimination"])
def test_minibatch_layers_change_what_d_says_of_a_collapsed_batch(digits, minibatch):
    block = gan_block(minibatch=minibatch)
    d = build_gan(block, SHAPE).discriminator
    plain = build_gan(gan_block(), SHAPE).discriminator
    images = to_signed_range(digits[0][:8])
    collapsed = np.repeat(images[:1], 8, axis=0)
    with_layer = [keras.ops.convert_to_numpy(d(b))[0, 0] for b in (images, collapsed)]
    without = [keras.ops.convert_to_numpy(plain(b))[0, 0] for b in (images, collapsed)]
    assert abs(with_layer[0] - with_layer[1]) > 1e-4
    assert abs(without[0] - without[1]) < 1e-5


@pytest.mark.jax
def test_a_nan_stops_training_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    block = gan_block()
    trainer = GanTrainer(build_gan(block, SHAPE), block, seed=0)
    images, labels = digits
    runner = trainer.epoch_runner(images[:128], labels[:128], plan(128, 16, 3 * 128, 1), tmp_path)

    def poisoned(epoch, state, progress):
        if epoch == 1:  # the generator's weights blow up during the second epoch
            arrays = numpy_state(state["generator"])
            arrays["trainable"][0][:] = np.nan
            state = {**state, "generator": shim.restore(state["generator"], arrays)}
        return runner(epoch, state, progress)

    template = trainer.initial_state()
    with pytest.raises(Diverged, match="diverged at epoch 2.*epoch 1\\) is kept"):
        run_epochs(epochs=3, directory=tmp_path, state=template, progress=Progress("k"),
                   run_epoch=poisoned)
    state, progress = load_checkpoint(tmp_path, "k", template)
    assert progress.epoch == 0
    assert all(np.isfinite(v).all() for v in numpy_state(state["generator"])["trainable"])


# Runs a stage in a child process with one of the loop's functions wrapped first.
WRAPPED_STAGE = """
import os, runpy, signal, sys
from latentlab.training import loop
{wrapper}
sys.argv = sys.argv[1:]  # as `python -m stages.train gan` sees them
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def _run_wrapped(project, wrapper: str, stage: tuple[str, ...] = ("stages.train", "gan")):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = WRAPPED_STAGE.format(wrapper=wrapper)
    return subprocess.run([sys.executable, "-c", code, *stage], cwd=project, env=env,
                          capture_output=True, text=True)


def test_a_diverging_stage_exits_2_with_the_message_and_no_outputs(digits_prepared, tmp_path):
    project = _stage_project(tmp_path, digits_prepared, **stage_passes(3))
    proc = _run_wrapped(project, """
original = loop.run_epochs
def run_epochs(**kw):
    run_epoch = kw["run_epoch"]
    def nan_in_epoch_2(epoch, state, progress):
        state, logs = run_epoch(epoch, state, progress)
        return state, ({**logs, "d_loss": float("nan")} if epoch == 1 else logs)
    return original(**{**kw, "run_epoch": nan_in_epoch_2})
loop.run_epochs = run_epochs
""")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "training diverged at epoch 2" in proc.stderr and "d_loss became nan" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project / "models").exists() and not (project / "metrics").exists()


STAGE_GAN = {**TINY_GAN, "max_train_images": 256}  # 16 steps an epoch: the process is the test


def stage_passes(n: int) -> dict:
    return passes(n, STAGE_GAN["max_train_images"])


def _stage_project(tmp_path, digits_prepared, **gan):
    (tmp_path / "data").mkdir(parents=True)
    os.symlink(digits_prepared, tmp_path / "data" / "prepared")
    params = {"train_gan": {**STAGE_GAN, **gan}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _gan_run(prepared, where, epochs, **extra):
    params = make_params(train_gan={**STAGE_GAN, **stage_passes(epochs), **extra})
    out = [where / k for k in ("models", "ck", "m.json", "h.csv", "samples")]
    return train.run(params, "gan", prepared, *out)


def _generator_steps(where) -> int:
    checkpoint = Checkpoint(where / "ck", json.loads((where / "ck/checkpoint.json").read_text())["key"])
    checkpoint.load()
    return int(checkpoint.arrays("state")["generator/optimizer/0"])  # Adam's iterations


def test_kill_9_right_after_a_checkpoint_resumes_from_it(digits_prepared, tmp_path):
    project = _stage_project(tmp_path, digits_prepared, **stage_passes(3))
    killed = _run_wrapped(project, """
original = loop.save_checkpoint
def save_checkpoint(checkpoint, state, progress):
    original(checkpoint, state, progress)
    if progress.epoch == 0:  # the first epoch's checkpoint is on disk: die at once
        os.kill(os.getpid(), signal.SIGKILL)
loop.save_checkpoint = save_checkpoint
""")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = json.loads((project / "checkpoints/train_gan/checkpoint.json").read_text())
    assert saved["state"]["epoch"] == 0 and "epoch 2/3" not in killed.stderr

    rerun = subprocess.run([sys.executable, "-m", "stages.train", "gan"], cwd=project,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from the checkpoint after epoch 1" in rerun.stderr
    assert "epoch 2/3" in rerun.stderr and "epoch 1/3" not in rerun.stderr
    metrics = json.loads((project / "metrics/gan.json").read_text())
    assert metrics["epochs_trained"] == 3
    history = (project / "plots/gan_history.csv").read_text().splitlines()
    assert len(history) == 1 + 3
    frames = sorted(p.name for p in (project / "reports/gan/progress").iterdir())
    assert frames == [f"epoch_{i:03d}.png" for i in range(1, 4)]

    # Resuming lost nothing: the same three epochs in one go, in a fresh process as every stage
    # runs (in bfloat16, a process that ran other work first can differ in the last bits), give
    # the same losses.
    fresh = _stage_project(tmp_path / "fresh", digits_prepared, **stage_passes(3))
    uninterrupted = subprocess.run([sys.executable, "-m", "stages.train", "gan"], cwd=fresh,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert (fresh / "plots/gan_history.csv").read_text() == "\n".join(history) + "\n"


def test_train_gan_stage_variants_and_errors(digits_prepared, tmp_path, caplog):
    params = make_params(train_gan={**TINY_GAN, "conditional": True, "replay": True,
                                    "minibatch": "stddev", "label_smoothing": 0.1,
                                    "label_flip": 0.05, "instance_noise": 0.1, **passes(1),
                                    "diffaugment": ["color", "translation", "cutout"]})
    out = {k: tmp_path / k for k in ("models", "ck", "m.json", "h.csv", "samples")}
    metrics = train.run(params, "gan", digits_prepared, *out.values())
    assert np.isfinite(metrics["final_d_loss"]) and np.isfinite(metrics["final_g_loss"])
    generator = keras.models.load_model(out["models"] / "generator.keras")
    assert generator.output_shape == (None, *SHAPE)
    card = json.loads((out["models"] / "model.json").read_text())  # what samplers read
    assert card == {"family": "gan", "network": "generator.keras", "image_shape": list(SHAPE),
                    "pixel_range": [-1.0, 1.0], "latent": TINY_GAN["latent"],
                    "classes": [str(i) for i in range(10)], "precision": AUTO}
    checkpoint = Checkpoint(out["ck"], json.loads((out["ck"] / "checkpoint.json").read_text())["key"])
    assert checkpoint.load()["epoch"] == 0
    assert checkpoint.arrays("state")["extra/pool_images"].shape == (50, *SHAPE)

    # A batch larger than the split (a tiny dataset) trains, each batch repeating some images.
    big = make_params(train_gan={**TINY_GAN, "batch_size": 1500, **passes(1)})
    with caplog.at_level("WARNING"):
        metrics = train.run(big, "gan", digits_prepared, *(tmp_path / "big" / k for k in out))
    assert "a batch of 1500 is more than the 1439 train images" in caplog.text
    assert np.isfinite(metrics["final_d_loss"]) and np.isfinite(metrics["final_g_loss"])
    trained = json.loads((tmp_path / "big/models/training.json").read_text())
    assert trained["batch_size"] == 1500 and trained["images_seen"] == 1500


@pytest.mark.jax
def test_more_gan_epochs_continue_the_checkpoint_and_equal_a_fresh_run(digits_prepared, tmp_path):
    _gan_run(digits_prepared, tmp_path / "a", 1)
    steps_per_epoch = _generator_steps(tmp_path / "a")
    metrics = _gan_run(digits_prepared, tmp_path / "a", 3)  # continues: epochs 2 and 3 only
    assert metrics["epochs_trained"] == 3 and _generator_steps(tmp_path / "a") == 3 * steps_per_epoch
    frames = sorted(p.name for p in (tmp_path / "a/samples/progress").iterdir())
    assert frames == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    _gan_run(digits_prepared, tmp_path / "b", 3)
    # Epochs are seeded one by one: continuing gives exactly the run made in one go.
    assert (tmp_path / "a/h.csv").read_text() == (tmp_path / "b/h.csv").read_text()


def test_fewer_gan_epochs_or_another_param_train_afresh(digits_prepared, tmp_path, caplog):
    """Which checkpoint a run continues is the stage's key and the checkpoint's logic, the same on
    each backend (so this test is not rerun on jax)."""
    _gan_run(digits_prepared, tmp_path, 2)
    two_epochs = _generator_steps(tmp_path)
    with caplog.at_level("INFO"):
        metrics = _gan_run(digits_prepared, tmp_path, 1)
    assert "past epochs=1; starting afresh" in caplog.text
    assert metrics["epochs_trained"] == 1 and 2 * _generator_steps(tmp_path) == two_epochs
    caplog.clear()
    with caplog.at_level("INFO"):
        _gan_run(digits_prepared, tmp_path, 1, learning_rate=1e-4)
    assert "checkpoint is for other params or data; starting afresh" in caplog.text


def test_the_vae_keeps_the_weights_of_its_lowest_val_loss(digits_prepared, tmp_path):
    """A learning rate high enough that the val loss jumps around: whichever epoch was best,
    the saved decoder is that epoch's, and the metrics are its val loss, not the last epoch's."""
    params = make_params(train_vae={**TINY_VAE, "architecture": "conv", "learning_rate": 0.05,
                                    **passes(6)})
    out = [tmp_path / k for k in ("models", "ck", "m.json", "h.csv", "samples")]
    metrics = train.run(params, "vae", digits_prepared, *out)
    history = np.loadtxt(tmp_path / "h.csv", delimiter=",", skiprows=1, ndmin=2)
    header = (tmp_path / "h.csv").read_text().splitlines()[0].split(",")
    val, kl = (history[:, header.index(k)] for k in ("val_loss", "val_kl"))
    best = int(np.argmin(val))
    assert metrics["epochs_trained"] == 6 and metrics["best_epoch"] == best + 1
    # The KL of the val images' codings is a function of the weights alone (the reconstruction
    # term samples): the saved weights are the best epoch's.
    assert metrics["val_kl"] == pytest.approx(kl[best], rel=1e-4)
    assert best == 5 or metrics["val_kl"] != pytest.approx(kl[-1], rel=1e-3)
    trained = json.loads((tmp_path / "models/training.json").read_text())
    assert trained["best_epoch"] == metrics["best_epoch"] and trained["epochs"] == 6


def test_train_vae_stage_writes_models_samples_and_metrics(digits_prepared, tmp_path):
    params = make_params(train_vae={**TINY_VAE, "architecture": "conv"})
    out = [tmp_path / k for k in ("models", "ck", "m.json", "h.csv", "samples")]
    metrics = train.run(params, "vae", digits_prepared, *out)
    assert metrics["epochs_trained"] == 2
    assert metrics["val_loss"] == pytest.approx(
        metrics["val_reconstruction_mse"] + metrics["val_kl"] / 64, rel=1e-4)
    assert len(list((tmp_path / "samples/progress").glob("epoch_*.png"))) == 2
    decoder = keras.models.load_model(tmp_path / "models/decoder.keras")
    card = json.loads((tmp_path / "models/model.json").read_text())
    assert card == {"family": "vae", "network": "decoder.keras", "image_shape": [8, 8, 1],
                    "pixel_range": [0.0, 1.0], "latent": decoder.input_shape[-1], "classes": None,
                    "precision": AUTO}
