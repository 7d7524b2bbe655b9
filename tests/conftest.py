"""Shared fixtures: real image folders on disk, a loopback HTTP server, a temp project copy."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path


class _NoTensorflow:
    """Makes `import tensorflow` fail, to prove the jax backend does not need it."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ImportError(f"{name} is blocked: the jax backend must run without tensorflow")


if os.environ.get("LATENTLAB_BLOCK_TENSORFLOW") == "1":
    sys.meta_path.insert(0, _NoTensorflow())

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from latentlab.data.fashion_mnist import DEBIAN_DIR
from latentlab.params import Params, parse_params

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

needs_debian_fashion_mnist = pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)",
)


def make_params(**blocks: dict) -> Params:
    """Params with the given blocks overridden, validated like params.yaml."""
    return parse_params({name: dict(values) for name, values in blocks.items()}, origin="test")


def write_image(path: Path, rng: np.random.Generator, size: tuple[int, int], fmt: str) -> None:
    """A random but structured picture (a gradient plus a block), saved in ``fmt``."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = ((x / width + y / height) * 127).astype(np.uint8)
    rgb = np.stack([base, np.roll(base, 7, axis=1), 255 - base], axis=-1)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    rgb[top: top + height // 3, left: left + width // 3] = rng.integers(0, 256, 3, dtype=np.uint8)
    image = Image.fromarray(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "GIF":
        image = image.convert("P")
    image.save(path, format=fmt)


def make_image_folder(
    root: Path, classes: list[str] | None, per_class: int, seed: int = 0, corrupt: int = 0,
    formats: tuple[str, ...] = ("JPEG",), sizes: tuple[int, int] = (40, 200),
) -> list[Path]:
    """Write a folder of real image files (class sub-folders, or flat when classes is None).

    ``corrupt`` files get an image suffix but truncated or garbage bytes. Returns corrupt paths.
    """
    rng = np.random.default_rng(seed)
    suffix = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp"}
    groups = classes or [None]
    count = 0
    for cls in groups:
        folder = root / cls if cls else root
        for i in range(per_class):
            fmt = formats[count % len(formats)]
            size = (int(rng.integers(*sizes)), int(rng.integers(*sizes)))
            write_image(folder / f"img_{i:05d}{suffix[fmt]}", rng, size, fmt)
            count += 1
    bad = []
    for i in range(corrupt):
        folder = root / groups[i % len(groups)] if classes else root
        path = folder / f"broken_{i:03d}.jpg"
        good = folder / f"img_{i:05d}.jpg"
        data = good.read_bytes()[: 200] if i % 2 == 0 else b"this is not an image"
        path.write_bytes(data)
        bad.append(path)
    return bad


class FileServer:
    """A real HTTP server on 127.0.0.1 that serves given bytes and can fail on demand."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.fail_next = 0  # answer this many requests with 503 first
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                if server.fail_next > 0:
                    server.fail_next -= 1
                    self.send_error(503)
                    return
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    servers = []

    def start(files: dict[str, bytes]) -> FileServer:
        servers.append(FileServer(files))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def copy_project(where: Path) -> Path:
    """A copy of the project's files in a fresh git repo, for running DVC end to end."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.split()
    dest = where / "project"
    for rel in listed:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture(scope="session")
def digits_prepared(tmp_path_factory) -> Path:
    """scikit-learn's digits, downloaded and prepared (8×8×1) once per test session."""
    from stages import download, downsample

    root = tmp_path_factory.mktemp("digits")
    params = make_params(data={"source": "digits"}, downsample={"image_size": 8, "workers": 1})
    download.run(params, root / "raw")
    downsample.run(params, root / "raw", root / "prepared", root / "card")
    return root / "prepared"


# Params that run the whole DAG on digits (8×8) in about a minute.
TINY_PIPELINE = {
    "data": {"source": "digits"},
    "downsample": {"image_size": 8},
    "pretrain": {"codings": 8, "conv_filters": [8, 16], "epochs": 2, "batch_size": 64},
    "finetune": {"labels_per_class": [3], "seeds": 1, "head_units": 8, "head_epochs": 1,
                 "finetune_epochs": 1, "min_epoch_images": 64},
    "train_vae": {"latent": 4, "hidden_units": [32], "epochs": 2, "batch_size": 64},
    "train_gan": {"filters": [8, 16], "latent": 8, "epochs": 2, "batch_size": 32, "grid_size": 4},
    "evaluator": {"epochs": 1},
    "evaluate": {"samples": 200, "kid_subsets": 3, "kid_subset_size": 100,
                 "memorization_samples": 100},
    "render": {"map_points": 100, "map_thumbnails": 20, "grid_size": 4},
}


def set_params(project: Path, **blocks: dict) -> None:
    """Update blocks of the project's params.yaml."""
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for block, values in blocks.items():
        params[block].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(project: Path, *args: str, check: bool = True, tracking: bool = False
        ) -> subprocess.CompletedProcess:
    """Run DVC in ``project`` with this interpreter on PATH (the stages run `python -m ...`).

    MLflow tracking is off unless asked for: only the tracking tests need it, and it is slow.
    """
    env = {**os.environ, "LATENTLAB_TRACKING": "1" if tracking else "0"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc
