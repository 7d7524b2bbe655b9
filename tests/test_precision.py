"""The precision setting: what `auto` picks on which hardware, float32 at every network's end, and
models trained in bfloat16 that save float32 weights and sample under float32."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from latentlab import precision
from latentlab.families.diffusion.model import build_denoiser
from latentlab.families.gan.model import build_gan
from latentlab.families.gan.params import GanBlock
from latentlab.families.vae.model import build_vae
from latentlab.families.vae.params import VaeBlock
from latentlab.models.autoencoders import build_autoencoder
from latentlab.models.classifier import build_classifier, build_evaluator
from latentlab.params import PretrainBlock
from latentlab.precision import Hardware, choose
from stages import train
from tests.support.data import make_params, passes

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse sse2 avx avx2 avx512f {extra}
bogomips\t: 4000.00
"""


@pytest.mark.parametrize("extra, expected", [
    ("amx_bf16 amx_tile", "bfloat16"),
    ("avx512_bf16", "bfloat16"),
    ("avx512_vnni", "float32"),  # no native bfloat16: emulated would be slower
    ("", "float32"),
])
def test_auto_picks_bfloat16_by_the_cpu_flags_read_from_cpuinfo(tmp_path, extra, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    choice = choose("auto", Hardware(precision.cpu_flags(cpuinfo)))
    assert choice.precision == expected
    assert choice.reason.startswith("auto: the CPU has")
    assert (extra.split()[0] in choice.reason) if expected == "bfloat16" else "neither" in choice.reason


def test_a_gpu_decides_by_its_compute_capability_and_settings_override_auto():
    bf16_cpu = frozenset({"avx512_bf16"})
    assert choose("auto", Hardware(bf16_cpu, "a GPU of compute capability 7.5", False)).precision \
        == "float32"  # the GPU computes, not the CPU
    assert choose("auto", Hardware(frozenset(), "a GPU of compute capability 9.0", True)).precision \
        == "bfloat16"
    assert choose("float32", Hardware(bf16_cpu)).precision == "float32"
    forced = choose("bfloat16", Hardware(frozenset()))
    assert forced.precision == "bfloat16" and "emulated" in forced.reason
    assert precision.cpu_flags(Path("/nonexistent/cpuinfo")) == frozenset()


def test_configure_sets_the_policy_and_logs_why(caplog):
    caplog.set_level("INFO", "latentlab.precision")
    choice = precision.configure("auto", Hardware(frozenset({"amx_bf16"})))
    assert keras.config.dtype_policy().name == "mixed_bfloat16" == choice.policy
    assert precision.current() == "bfloat16" and precision.chosen() == choice
    assert "precision: bfloat16 (auto: the CPU has amx_bf16" in caplog.text
    caplog.clear()
    precision.configure("auto", Hardware(frozenset({"avx2"})))
    assert keras.config.dtype_policy().name == "float32" and precision.current() == "float32"
    # auto's float32 on a CPU without bfloat16 is the right choice, not a warning ...
    assert [r.levelname for r in caplog.records] == ["INFO"], caplog.text
    caplog.clear()
    precision.configure("bfloat16", Hardware(frozenset({"avx2"})))
    # ... bfloat16 asked for where it is emulated is.
    assert [r.levelname for r in caplog.records] == ["WARNING"], caplog.text
    assert "emulated here and slower" in caplog.text


def _networks():
    shape = (16, 16, 3)
    ae = build_autoencoder(PretrainBlock(architecture="conv", codings=8, conv_filters=[8, 8]),
                           shape)
    dense = build_autoencoder(PretrainBlock(architecture="dense", codings=8, hidden_units=[16],
                                            tied_weights=True), shape)
    vae = build_vae(VaeBlock(architecture="conv", latent=4, conv_filters=[8, 8]), shape, 0)
    gan = build_gan(GanBlock(latent=8, filters=[8, 16]), shape)
    return {
        "encoder": (ae.encoder, [np.zeros((2, *shape))]),
        "decoder": (ae.decoder, [np.zeros((2, 8))]),
        "tied decoder": (dense.decoder, [np.zeros((2, 8))]),
        "vae encoder": (vae.encoder, [np.zeros((2, *shape))]),
        "vae decoder": (vae.decoder, [np.zeros((2, 4))]),
        "generator": (gan.generator, [np.zeros((2, 8))]),
        "discriminator": (gan.discriminator, [np.zeros((2, *shape))]),
        "classifier": (build_classifier(ae.encoder, 3, 8), [np.zeros((2, *shape))]),
        "evaluator": (build_evaluator(shape, 3), [np.zeros((2, *shape))]),
        "denoiser": (build_denoiser(shape, [8, 16], 1), [np.zeros((2, *shape)), np.zeros((2, 1))]),
    }


def test_under_bfloat16_every_network_computes_in_it_and_ends_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    for name, (model, inputs) in _networks().items():
        outputs = model(inputs if len(inputs) > 1 else inputs[0])
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            assert keras.backend.standardize_dtype(out.dtype) == "float32", name
        assert all(v.dtype == "float32" for v in model.weights), name  # variables stay float32
        assert any(getattr(layer, "compute_dtype", None) == "bfloat16"
                   for layer in model.layers), name


def test_a_bf16_trained_gan_saves_float32_and_samples_under_float32(digits_prepared, tmp_path):
    params = make_params(base={"seed": 0, "precision": "bfloat16"},
                         train_gan={"latent": 8, "filters": [8, 16], "batch_size": 16,
                                    **passes(1)})
    out = {k: tmp_path / k for k in ("models", "ck", "m.json", "h.csv", "samples")}
    metrics = train.run(params, "gan", digits_prepared, *out.values())
    assert all(np.isfinite(v) for v in metrics.values())
    assert json.loads((out["models"] / "training.json").read_text())["precision"] == "bfloat16"
    assert json.loads((out["models"] / "model.json").read_text())["precision"] == "bfloat16"
    noise = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    trained = keras.models.load_model(out["models"] / "generator.keras")
    assert all(w.dtype == np.float32 for w in trained.get_weights())
    in_bf16 = keras.ops.convert_to_numpy(trained(noise))

    precision.configure("float32")  # a machine without native bfloat16
    generator = precision.load_model(out["models"] / "generator.keras")
    assert all(layer.dtype_policy.name == "float32" for layer in generator.layers)
    drawn = keras.ops.convert_to_numpy(generator(noise))
    assert drawn.dtype == np.float32 and np.isfinite(drawn).all()
    assert np.abs(drawn).max() <= 1.0
    # the same function, computed at float32's precision instead of bfloat16's
    assert np.abs(drawn - in_bf16).max() < 0.1
    assert not np.array_equal(drawn, in_bf16)


def test_a_stage_that_gains_little_keeps_float32_on_a_cpu_under_auto_only():
    cpu = Hardware(frozenset({"avx512_bf16"}))
    kept = choose("auto", cpu, float32_because="its step gains little")
    assert kept.precision == "float32" and kept.reason.endswith("but its step gains little")
    assert choose("bfloat16", cpu, float32_because="its step gains little").precision == "bfloat16"
    gpu = Hardware(frozenset(), "a GPU of compute capability 9.0", True)
    assert choose("auto", gpu, float32_because="its step gains little").precision == "bfloat16"
