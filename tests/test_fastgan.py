"""The few-shot family (FastGAN): what its step differentiates and updates, and that a resumed
run is the uninterrupted one."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from latentlab.families.fastgan.model import build_fastgan, build_generator, g_widths
from latentlab.families.fastgan.params import FastGanBlock
from latentlab.families.fastgan.training import FastGanTrainer
from latentlab.models.layers import SNConv2D
from latentlab.training import diffaugment, shim
from stages import train
from tests.support.data import make_params

BLOCK = FastGanBlock(width=4, d_width=8, latent=8, batch_size=8, diffaugment=["translation"])
SHAPE = (16, 16, 3)


def _trainer(block=BLOCK, seed=0):
    keras.utils.set_random_seed(seed)
    return FastGanTrainer(build_fastgan(block, SHAPE), build_generator(block, SHAPE), block, seed)


def _batch(trainer, seed=1):
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, (8, *SHAPE)).astype(np.float32)
    return trainer.host_batch(rng, real, step=0)


def test_the_generator_grows_from_a_small_map_and_excites_fine_maps_from_coarse_ones():
    generator = build_generator(FastGanBlock(width=4), (64, 64, 3))
    assert g_widths(64, 4) == [64, 32, 16, 8, 4]  # 4, 8, 16, 32, 64 px
    names = [layer.name for layer in generator.layers]
    assert {"sle_3", "sle_4"} <= set(names)  # 4 → 32 px and 8 → 64 px
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in generator.layers)
    with pytest.raises(ValueError, match="halves to 7 or less"):
        build_generator(FastGanBlock(), (36, 36, 3))


def test_diffaugment_reaches_both_of_d_inputs_and_gs_step():
    trainer = _trainer()
    state, batch = trainer.initial_state(), _batch(trainer)
    fake = np.random.default_rng(2).uniform(-1, 1, (8, *SHAPE)).astype(np.float32)
    d, dec = state["discriminator"], state["decoders"]
    params = [*d["trainable"], *dec["trainable"]]

    def d_loss(**changed):
        return float(trainer._d_loss(params, d, dec, batch["real"], fake, {**batch, **changed})[0])

    other = diffaugment.draw(np.random.default_rng(9), 8, SHAPE[0], ("translation",))
    plain = d_loss()
    assert d_loss(augment_real=other) != plain  # the real images go through it
    assert d_loss(augment_fake=other) != plain  # and the fakes
    g = state["generator"]

    def g_loss(augment):
        return float(trainer._g_loss(g["trainable"], g, d, batch["noise_g"], augment)[0])

    assert g_loss(other) != g_loss(batch["augment_g"])  # G is trained through it too


def test_the_reconstruction_decoders_train_d_and_never_push_on_the_fakes():
    for weight in (0.0, 1.0):
        trainer = _trainer(BLOCK.model_copy(update={"reconstruction_weight": weight}))
        state, batch = trainer.initial_state(), _batch(trainer)
        before = [np.array(v) for v in state["decoders"]["trainable"]]
        new, logs = trainer.step(state, batch)
        after = [np.array(v) for v in new["decoders"]["trainable"]]
        moved = any(not np.array_equal(a, b) for a, b in zip(before, after))
        assert moved == (weight > 0)  # the decoders learn from the reconstruction alone
        assert float(logs["reconstruction"]) > 0
    # D's loss pushes on a fake image through the hinge term only: its gradient there is the
    # same with or without the reconstruction term (which reads real images alone).
    grads = []
    for weight in (0.0, 1.0):
        trainer = _trainer(BLOCK.model_copy(update={"reconstruction_weight": weight}))
        state, batch = trainer.initial_state(), _batch(trainer)
        d, dec = state["discriminator"], state["decoders"]
        params = [*d["trainable"], *dec["trainable"]]
        fake = keras.ops.convert_to_tensor(
            np.random.default_rng(2).uniform(-1, 1, (8, *SHAPE)).astype(np.float32))
        grads.append(np.array(shim.input_gradient(
            lambda x: trainer._d_loss(params, d, dec, batch["real"], x, batch)[0], fake)))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    assert np.abs(grads[0]).sum() > 0


def test_spectral_norm_reaches_every_conv_and_its_vectors_train_and_save(tmp_path):
    trainer = _trainer(BLOCK.model_copy(update={"spectral_norm": True}))
    nets = {"generator": trainer.gan.generator, "discriminator": trainer.gan.discriminator,
            "decoders": trainer.gan.decoders}
    for net in nets.values():
        convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
        assert convs and all(isinstance(layer, SNConv2D) for layer in convs)
    state = trainer.initial_state()
    before = {name: [np.array(v) for v in state[name]["non_trainable"]] for name in nets}
    new, _ = trainer.step(state, _batch(trainer))
    for name, net in nets.items():  # each player's power-iteration vectors follow its kernels
        vectors = [i for i, v in enumerate(net.non_trainable_variables) if "sn_u" in v.path]
        assert vectors
        for i in vectors:
            assert not np.array_equal(before[name][i], np.array(new[name]["non_trainable"][i]))
    generator = nets["generator"]
    for kind in ("trainable", "non_trainable"):
        for variable, value in zip(getattr(generator, f"{kind}_variables"),
                                   new["generator"][kind]):
            variable.assign(value)
    noise = np.random.default_rng(3).standard_normal((4, BLOCK.latent)).astype(np.float32)
    generator.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    np.testing.assert_array_equal(np.array(generator(noise)), np.array(loaded(noise)))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_a_resumed_run_is_the_uninterrupted_one(tmp_path, spectral_norm):
    prepared = tmp_path / "prepared"  # 40 train and 8 val colour images, unlabeled
    prepared.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("val", 8)):
        np.save(prepared / f"{split}_images.npy", rng.integers(0, 256, (n, *SHAPE), np.uint8))
        np.save(prepared / f"{split}_labels.npy", np.full(n, -1, np.int64))

    def run(where, images):
        params = make_params(base={"precision": "float32"}, train_fastgan={
            **BLOCK.model_dump(), "images_seen": images, "min_epoch_images": 1,
            "spectral_norm": spectral_norm})
        return train.run(params, "fastgan", prepared, where / "m", where / "ck", where / "m.json",
                         where / "h.csv", where / "s")

    run(tmp_path / "a", 80)  # two epochs, then raised to three: continued from the checkpoint
    resumed = run(tmp_path / "a", 120)
    whole = run(tmp_path / "b", 120)
    assert resumed == whole and resumed["epochs_trained"] == 3
    assert (tmp_path / "a/h.csv").read_text() == (tmp_path / "b/h.csv").read_text()
    a, b = (keras.models.load_model(p / "m/generator.keras") for p in (tmp_path / "a",
                                                                       tmp_path / "b"))
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert sorted(p.name for p in (tmp_path / "a/s/progress").iterdir()) == [
        "epoch_001.png", "epoch_002.png", "epoch_003.png"]
