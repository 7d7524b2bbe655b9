"""The diffusion family: its samplers' contracts, its stage (checkpoint, resume, card) and
`latentlab sample` on what the stage saved. Run on both backends (jax with tensorflow blocked)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from latentlab import cli
from latentlab.families.diffusion import model as d
from latentlab.families.diffusion.sampling import samples
from latentlab.training.checkpoint import Checkpoint
from stages import train
from tests.support.data import make_params, passes

SHAPE = (8, 8, 1)
TINY = {"width": 8, "blocks": 1, "batch_size": 32, **passes(2), "grid_size": 4, "steps": 4}
SETTINGS = {"prediction": "v", "min_signal": 0.02, "max_signal": 0.95, "steps": 6, "eta": 0.0,
            "guidance": 1.0}


def denoiser(n_classes: int = 0) -> keras.Model:
    """A small U-Net with random (not zero) output weights: untrained, it predicts zero."""
    keras.utils.set_random_seed(0)
    model = d.build_denoiser(SHAPE, [8, 16], 1, n_classes)
    out = model.get_layer("out")
    out.kernel.assign(np.random.default_rng(0).normal(0, 0.3, out.kernel.shape))
    return model


class Counted:
    """The network as the samplers call it, counting the calls and recording the labels."""

    def __init__(self, model):
        self.call, self.calls, self.labels = d.denoiser_call(model), 0, []

    def __call__(self, noisy, t, labels):
        self.calls += 1
        self.labels.append(None if labels is None else np.array(labels))
        return self.call(noisy, t, labels)


@pytest.mark.jax
def test_ddim_with_eta_0_is_deterministic_and_fewer_steps_call_the_network_less():
    net = Counted(denoiser())
    first = d.generate(net, SHAPE, 5, 7, SETTINGS)
    assert net.calls == SETTINGS["steps"]  # one call a step for the whole batch
    assert first.shape == (5, *SHAPE) and first.min() >= -1 and first.max() <= 1
    np.testing.assert_array_equal(d.generate(net, SHAPE, 5, 7, SETTINGS), first)
    assert not np.array_equal(d.generate(net, SHAPE, 5, 8, SETTINGS), first)  # another seed

    net.calls = 0
    d.generate(net, SHAPE, 5, 7, SETTINGS, steps=2)
    assert net.calls == 2
    net.calls = 0
    d.generate(net, SHAPE, 5, 7, SETTINGS, steps=3, batch=2)  # batches of 2, 2 and 1
    assert net.calls == 3 * 3

    # eta > 0 adds fresh noise each step: seeded, so repeatable, and not the deterministic path.
    ancestral = d.generate(net, SHAPE, 5, 7, SETTINGS, eta=1.0)
    np.testing.assert_array_equal(d.generate(net, SHAPE, 5, 7, SETTINGS, eta=1.0), ancestral)
    assert not np.allclose(ancestral, first)

    images, path = d.generate(net, SHAPE, 3, 7, SETTINGS, trajectory=True)
    assert path.shape == (SETTINGS["steps"] + 1, 3, *SHAPE)  # the noise, then each step
    np.testing.assert_array_equal(path[-1], images)
    np.testing.assert_allclose(images, first[:3], atol=1e-5)  # the same draws, fewer of them


@pytest.mark.jax
def test_guidance_0_is_the_unconditional_model_and_1_the_conditional_one():
    n_classes = 3
    net = Counted(denoiser(n_classes))
    labels = np.array([0, 1, 2, 1])
    unconditional = d.generate(net, SHAPE, 4, 3, SETTINGS, labels=labels, n_classes=n_classes,
                               guidance=0.0)
    assert all((y == n_classes).all() for y in net.labels)  # only the "no class" row was asked
    forced = d.generate(lambda x, t, y: net(x, t, np.full(len(x), n_classes)), SHAPE, 4, 3,
                        SETTINGS, labels=labels, n_classes=n_classes, guidance=1.0)
    np.testing.assert_allclose(unconditional, forced, atol=1e-6)

    net.labels, net.calls = [], 0
    conditional = d.generate(net, SHAPE, 4, 3, SETTINGS, labels=labels, n_classes=n_classes,
                             guidance=1.0)
    assert net.calls == SETTINGS["steps"] and all((y == labels).all() for y in net.labels)
    assert not np.allclose(conditional, unconditional)

    net.labels, net.calls = [], 0
    guided = d.generate(net, SHAPE, 4, 3, SETTINGS, labels=labels, n_classes=n_classes,
                        guidance=3.0)
    # Both predictions from one call on the doubled batch: the classes, then "no class".
    assert net.calls == SETTINGS["steps"]
    assert all((y == np.concatenate([labels, np.full(4, n_classes)])).all() for y in net.labels)
    assert not np.allclose(guided, conditional)


def _stage(where, digits_prepared, **block):
    params = make_params(train_diffusion={**TINY, **block})
    out = [where / k for k in ("models", "ck", "m.json", "h.csv", "samples")]
    return train.run(params, "diffusion", digits_prepared, *out)


def _weights(where) -> list[np.ndarray]:
    return keras.models.load_model(where / "models/denoiser.keras").get_weights()


def test_a_resumed_diffusion_run_equals_an_uninterrupted_one(digits_prepared, tmp_path):
    _stage(tmp_path / "a", digits_prepared, **passes(1))
    key = json.loads((tmp_path / "a/ck/checkpoint.json").read_text())["key"]
    assert Checkpoint(tmp_path / "a/ck", key).load()["epoch"] == 0
    metrics = _stage(tmp_path / "a", digits_prepared, **passes(3))  # continues: 2 more epochs
    _stage(tmp_path / "b", digits_prepared, **passes(3))
    assert metrics["epochs_trained"] == 3
    assert (tmp_path / "a/h.csv").read_text() == (tmp_path / "b/h.csv").read_text()
    for a, b in zip(_weights(tmp_path / "a"), _weights(tmp_path / "b")):
        np.testing.assert_array_equal(a, b)  # the EMA weights that sample
    frames = sorted(p.name for p in (tmp_path / "a/samples/progress").iterdir())
    assert frames == ["epoch_001.png", "epoch_002.png", "epoch_003.png"]
    # Sampling settings are not training: changing them keeps the checkpoint.
    _stage(tmp_path / "a", digits_prepared, **passes(3), steps=9, eta=0.5)
    card = json.loads((tmp_path / "a/models/model.json").read_text())
    assert card["sampler"]["steps"] == 9 and card["sampler"]["eta"] == 0.5
    for a, b in zip(_weights(tmp_path / "a"), _weights(tmp_path / "b")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.jax
def test_the_conditional_stage_learns_and_latentlab_sample_draws_from_it(digits_prepared,
                                                                         tmp_path, capsys):
    metrics = _stage(tmp_path, digits_prepared, conditional=True, guidance=2.0, **passes(3))
    history = [float(line.split(",")[1]) for line in
               (tmp_path / "h.csv").read_text().splitlines()[1:]]
    assert history[-1] < history[0] and np.isfinite(metrics["final_loss"])
    card = json.loads((tmp_path / "models/model.json").read_text())
    assert card["family"] == "diffusion" and card["image_shape"] == list(SHAPE)
    assert card["classes"] == [str(i) for i in range(10)]
    assert card["sampler"] == {**SETTINGS, "steps": TINY["steps"], "guidance": 2.0}
    model = str(tmp_path / "models/denoiser.keras")

    cli.main(["sample", model, "-n", "9", "--grid", "-o", str(tmp_path / "grid.png"),
              "--label", "3", "--steps", "2"])
    assert Image.open(tmp_path / "grid.png").size[0] > 3 * 8
    cli.main(["sample", model, "--denoising", "-o", str(tmp_path / "d.gif")])
    gif = Image.open(tmp_path / "d.gif")
    assert gif.n_frames == TINY["steps"] + 1  # the noise, then each step
    from latentlab.models.card import card_of

    images = samples(keras.models.load_model(model), 6, 0,
                               card_of(tmp_path / "models/denoiser.keras"), steps=3)
    assert images.shape == (6, *SHAPE) and 0 <= images.min() and images.max() <= 1

    for argv, message in [
        (["--eta", "2"], "--eta 2.0: give a value from 0 (DDIM) to 1 (DDPM)"),
        (["--label", "ten"], "--label ten: the model knows classes 0..9"),
        (["--interpolate", "1", "2", "-o", str(tmp_path / "w.gif")],
         "a diffusion model shows its sampling with --denoising"),
        (["--denoising", "-o", str(tmp_path / "d.png")], "--denoising writes a GIF"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["sample", model, *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_conditional_diffusion_needs_labels(tmp_path):
    from latentlab.errors import UserError
    from stages import download, downsample
    from tests.support.data import make_rgba_sprites

    make_rgba_sprites(tmp_path / "folder", 40, size=8)
    params = make_params(data={"source": "folder", "local_dir": str(tmp_path / "folder")},
                         downsample={"image_size": 8, "workers": 1})
    download.run(params, tmp_path / "raw")
    downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    with pytest.raises(UserError, match="train_diffusion.conditional=true needs a labeled"):
        _stage(tmp_path / "x", tmp_path / "prepared", conditional=True)
    assert not (tmp_path / "x/models").exists()  # nothing half-written
