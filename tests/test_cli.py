"""`latentlab sample`: images from the tiny project's trained generator and VAE decoder, from a
path and from the registry of the session's real MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

LATENTLAB = str(Path(sys.executable).parent / "latentlab")  # the console script


def sample(*args: str, tracking: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    return subprocess.run([LATENTLAB, "sample", *args], capture_output=True, text=True, env=env)


def pixels(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_sample_from_a_path_and_from_a_registry_version(built, tmp_path):
    generator = str(built.project / "models/gan/generator.keras")
    one = sample(generator, "-n", "4", "--seed", "3", "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    images = pixels(tmp_path / "one")
    assert len(images) == 4 and images[0].shape == (8, 8) and images[0].dtype == np.uint8
    # The registry's first version is that same generator: the same seed gives the same images.
    registry = sample("models:/latentlab-gan-generator/1", "-n", "4", "--seed", "3",
                      "-o", str(tmp_path / "registry"), tracking=built.server.url)
    assert registry.returncode == 0, registry.stderr[-3000:]
    assert all(np.array_equal(a, b) for a, b in zip(images, pixels(tmp_path / "registry")))
    other = sample(generator, "-n", "4", "--seed", "4", "--grid", "-o", str(tmp_path / "grid.png"))
    assert other.returncode == 0, other.stderr[-3000:]
    assert Image.open(tmp_path / "grid.png").size[0] > 2 * 8

    walk = sample(str(built.project / "models/vae/decoder.keras"), "--interpolate", "1", "2",
                  "--steps", "5", "-o", str(tmp_path / "walk.gif"))
    assert walk.returncode == 0, walk.stderr[-3000:]
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.format == "GIF" and gif.n_frames == 2 * 5 - 2  # there and back


@pytest.mark.parametrize(("args", "message"), [
    (["models:/latentlab-gan-generator/999"], "models:/latentlab-gan-generator/999: not found in "
                                              "the MLflow registry"),
    (["{project}/models/pretrain/encoder.keras"], "the model is the 'encoder' network; `latentlab "
                                                  "sample` draws from a GAN generator"),
    (["{project}/models/gan/generator.keras", "--grid", "-o", "x.gif"], "--grid writes one PNG"),
    (["{project}/nowhere.keras"], "no such model file"),
])
def test_sample_errors_are_one_clear_line_and_exit_2(built, args, message):
    args = [a.format(project=built.project) for a in args]
    proc = sample(*args, tracking=built.server.url)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
