"""`latentlab sample`: images from the tiny project's trained generator and VAE decoder, from a
path and from the registry of the session's real MLflow server."""

from __future__ import annotations

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
