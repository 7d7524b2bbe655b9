"""`latentlab sample`: images from the tiny project's trained generator and VAE decoder, from a
path and from the registry of the session's real MLflow server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentlab import cli


def sample(capsys, *args: str) -> tuple[int, str]:
    """`latentlab sample ARGS` in this process: (exit status, stderr)."""
    try:
        cli.main(["sample", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def pixels(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


@pytest.mark.slow
def test_sample_from_a_path_and_from_a_registry_version(built, tmp_path, capsys, monkeypatch):
    generator = str(built.project / "models/gan/generator.keras")
    # The console script, once: it is installed with the environment.
    script = subprocess.run([str(Path(sys.executable).parent / "latentlab"), "sample", generator,
                             "-n", "4", "--seed", "3", "-o", str(tmp_path / "one")],
                            capture_output=True, text=True)
    assert script.returncode == 0, script.stderr[-3000:]
    assert "cuInit" not in script.stderr and "absl::InitializeLog" not in script.stderr
    images = pixels(tmp_path / "one")
    assert len(images) == 4 and images[0].shape == (8, 8) and images[0].dtype == np.uint8
    # The registry's first version is that same generator: the same seed gives the same images.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", built.server.url)
    code, err = sample(capsys, "models:/latentlab-gan-generator/1", "-n", "4", "--seed", "3",
                       "-o", str(tmp_path / "registry"))
    assert code == 0, err
    assert all(np.array_equal(a, b) for a, b in zip(images, pixels(tmp_path / "registry")))
    import mlflow  # the registered version carries the model's card as its metadata

    card = json.loads((built.project / "models/gan/model.json").read_text())
    assert mlflow.models.get_model_info("models:/latentlab-gan-generator/1").metadata == card
    code, err = sample(capsys, generator, "-n", "4", "--seed", "4", "-o", str(tmp_path / "other"))
    assert code == 0 and not all(np.array_equal(a, b)
                                 for a, b in zip(images, pixels(tmp_path / "other")))
    code, err = sample(capsys, generator, "-n", "9", "--grid", "-o", str(tmp_path / "grid.png"))
    assert code == 0 and Image.open(tmp_path / "grid.png").size[0] > 3 * 8

    code, err = sample(capsys, str(built.project / "models/vae/decoder.keras"), "--interpolate",
                       "1", "2", "--steps", "5", "-o", str(tmp_path / "walk.gif"))
    assert code == 0, err
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.format == "GIF" and gif.n_frames == 2 * 5 - 2  # there and back


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory) -> Path:
    """An autoencoder's encoder saved as the pretrain stage saves it (untrained: only its name
    matters to `sample`)."""
    from latentlab.models.autoencoders import build_autoencoder
    from tests.support.data import make_params

    block = make_params(pretrain={"codings": 4, "conv_filters": [4]}).pretrain
    path = tmp_path_factory.mktemp("models") / "encoder.keras"
    build_autoencoder(block, (8, 8, 1)).encoder.save(path)
    (path.parent / "notes.keras").write_text("not a model")
    return path


# Cheap: none of these waits for the session's build.
@pytest.mark.parametrize(("args", "message"), [
    (["models:/latentlab-gan-generator/999"], "models:/latentlab-gan-generator/999: not found in "
                                              "the MLflow registry"),
    (["{encoder}"], "the model is the 'encoder' network; `latentlab sample` draws from a GAN "
                    "generator"),
    (["{encoder}", "--grid", "-o", "{tmp}/x.gif"], "--grid writes one PNG"),
    (["{encoder}", "-n", "0"], "-n 0: ask for at least one image"),
    (["{tmp}/nowhere.keras"], "no such model file"),
    (["{models}/notes.keras"], "notes.keras: not a Keras model file (a .keras file is the zip "
                               "archive that `model.save` writes)"),
])
def test_sample_errors_are_one_clear_line_and_exit_2(mlflow_server, encoder_file, args, message,
                                                     capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    args = [*args, *([] if "-o" in args else ["-o", "{tmp}/out"])]
    places = {"encoder": encoder_file, "models": encoder_file.parent, "tmp": tmp_path}
    code, err = sample(capsys, *(a.format(**places) for a in args))
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_sample_reads_the_models_card_for_its_range_and_its_class_names(capsys, tmp_path):
    """A generator saved with a card (as `train_gan` saves it): its pixel range converts the
    output, and its class names are what `--label` takes; errors list them."""
    from latentlab.families.gan.model import build_gan
    from latentlab.models.card import ModelCard, write_card
    from tests.support.data import make_params

    block = make_params(train_gan={"filters": [8], "latent": 4}).train_gan
    folder = tmp_path / "gan"
    folder.mkdir()
    build_gan(block, (8, 8, 1), 3).generator.save(folder / "generator.keras")
    card = ModelCard("gan", "generator.keras", [8, 8, 1], [-1.0, 1.0], 4, ["cat", "dog", "owl"])
    write_card(folder, card)
    model = str(folder / "generator.keras")

    def drawn(*args: str) -> list[np.ndarray]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        code, err = sample(capsys, model, "-n", "3", "--seed", "5", "-o", str(out), *args)
        assert code == 0, err
        return pixels(out)

    by_name, by_index = drawn("--label", "dog"), drawn("--label", "1")
    assert all((a == b).all() for a, b in zip(by_name, by_index))
    assert any((a != b).any() for a, b in zip(by_name, drawn("--label", "owl")))
    write_card(folder, ModelCard(**{**card.__dict__, "pixel_range": [0.0, 1.0]}))
    assert any((a != b).any() for a, b in zip(by_name, drawn("--label", "dog")))  # the card counts
    code, err = sample(capsys, model, "--label", "cow", "-o", str(tmp_path / "none"))
    assert code == 2 and "--label cow: the model knows classes 0..2 (cat, dog, owl)" in err
    assert not (tmp_path / "none").exists()
    # the card describes the generator only: the discriminator beside it is not sampled
    build_gan(block, (8, 8, 1), 3).discriminator.save(folder / "discriminator.keras")
    code, err = sample(capsys, str(folder / "discriminator.keras"), "-o", str(tmp_path / "none"))
    assert code == 2 and "the model is the 'discriminator' network" in err


def test_sample_refuses_an_unknown_family_steps_on_a_gan_and_an_unwritable_output(capsys,
                                                                                  tmp_path):
    """Each before anything is drawn or written: one line, exit 2."""
    from latentlab.families.gan.model import build_gan
    from latentlab.models.card import ModelCard, write_card
    from tests.support.data import make_params

    block = make_params(train_gan={"filters": [8], "latent": 4}).train_gan
    folder = tmp_path / "gan"
    folder.mkdir()
    build_gan(block, (8, 8, 1)).generator.save(folder / "generator.keras")
    model = str(folder / "generator.keras")
    write_card(folder, ModelCard("gan", "generator.keras", [8, 8, 1], [-1.0, 1.0], 4))
    (tmp_path / "a_file").write_text("")
    cases = [
        (["--steps", "5", "-o", str(tmp_path / "out")], "--steps is for diffusion models (DDIM "
                                                        "steps) and --interpolate"),
        (["-o", str(tmp_path / "a_file" / "out")], f"{tmp_path / 'a_file'} is a file, not a "
                                                   "folder"),
        (["--grid", "-o", str(tmp_path / "a_file" / "deeper" / "g.png")], "is a file, not a "
                                                                          "folder"),
        # no file can be made there, root or not (as on a read-only file system)
        (["-o", "/proc/sys/latentlab_out"], "-o /proc/sys/latentlab_out: cannot write in "
                                            "/proc/sys"),
    ]
    for args, message in cases:
        code, err = sample(capsys, model, *args)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "gan"]

    write_card(folder, ModelCard("flow", "generator.keras", [8, 8, 1], [-1.0, 1.0], 4))
    code, err = sample(capsys, model, "-o", str(tmp_path / "out"))
    assert code == 2 and "model.json names the family 'flow', which latentlab does not know" in err
    assert not (tmp_path / "out").exists()
