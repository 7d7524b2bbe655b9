"""Shared fixtures: real image folders on disk, a loopback HTTP server, a real MLflow server, and
the tiny project built once per session (read-only checks use it; tests that change things get a
copy of it, DVC cache included, so only the changed tail reruns)."""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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
        self.trickle = 0.0  # when > 0: send the body one byte per this many seconds
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
                if not server.trickle:
                    self.wfile.write(body)
                    return
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle)
                except OSError:  # the client gave up
                    pass

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


DIGITS_TRAIN = 1439  # digits' train split as `digits_prepared` carves it


def passes(n: int, images: int = DIGITS_TRAIN) -> dict:
    """A training budget of ``n`` passes over ``images`` train images, one pass an epoch."""
    return {"images_seen": n * images, "min_epoch_images": 1}


# Params that run the whole DAG on digits (8×8) in about a minute.
TINY_PIPELINE = {
    "data": {"source": "digits"},
    "downsample": {"image_size": 8},
    # The plain autoencoder: the contrastive one has tests of its own and runs in the jax build.
    "pretrain": {"codings": 8, "conv_filters": [8, 16], **passes(2), "batch_size": 64,
                 "contrastive_weight": 0.0},
    "finetune": {"labels_per_class": [3], "seeds": 1, "head_units": 8, "head_epochs": 1,
                 "finetune_epochs": 1, "min_epoch_images": 64},
    "train_vae": {"latent": 4, "hidden_units": [32], **passes(2), "batch_size": 64},
    "train_gan": {"filters": [8, 16], "latent": 8, **passes(2), "batch_size": 32,
                  "grid_size": 4},
    "evaluator": passes(1),
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


STAGES = ("index", "download", "downsample", "pretrain", "finetune", "train_vae", "train_gan",
          "evaluator", "evaluate", "render")


def ran(output: str | subprocess.CompletedProcess) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    if isinstance(output, subprocess.CompletedProcess):
        output = output.stdout + output.stderr
    return {s for s in STAGES if f"Running stage '{s}'" in output}


def dvc_env(tracking: str | None = None) -> dict:
    """The environment of a `dvc` run: this interpreter on PATH, tracking on ``tracking`` or off."""
    env = {**os.environ, "LATENTLAB_TRACKING": "1" if tracking else "0"}
    if tracking:
        env["MLFLOW_TRACKING_URI"] = tracking
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def dvc(project: Path, *args: str, check: bool = True, tracking: str | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run DVC in ``project`` with this interpreter on PATH (the stages run `python -m ...`).

    MLflow tracking is off unless ``tracking`` names a tracking URI: only the tracking tests
    need it, and it is slow.
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=dvc_env(tracking),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def commit_all(project: Path, message: str) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", message], cwd=project, check=True)


# ---- hermetic environment ----------------------------------------------------------------------

@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment(tmp_path_factory):
    """No test reads or writes the user's Prefect home, Prefect or MLflow server, or MLflow store:
    each test that needs one passes its own; analytics stay off (no traffic leaves the machine)."""
    saved = dict(os.environ)
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILES_PATH",
                 "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "DVC_EXP_NAME"):
        os.environ.pop(name, None)
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # Prefect's temporary server gets 20 s to start by default, which a busy machine can exceed
    # (a flow run failed so); pytest-timeout bounds every test instead.
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "600"
    os.environ["LATENTLAB_TRACKING"] = "0"
    yield
    os.environ.clear()
    os.environ.update(saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server programs (`initdb`, `pg_ctl`), or None."""
    found = shutil.which("initdb")
    candidates = [Path(found)] if found else sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].resolve().parent if candidates else None


needs_postgres = pytest.mark.skipif(
    postgres_bin() is None,
    reason="PostgreSQL's server is not installed (scripts/setup.sh test installs Debian's)")


class Postgres:
    """A throwaway PostgreSQL cluster on loopback (`initdb` and `pg_ctl` in a temp dir of its
    own), run as the `postgres` user when the tests run as root (initdb refuses root)."""

    def __init__(self):
        self.port = free_port()
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def _run(self, program: str, *args: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*as_user, str(postgres_bin() / program), *args], check=True,
                       capture_output=True, cwd=self.root)

    def __enter__(self) -> Postgres:
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="latentlab-pg-"))  # pytest's are root-only
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres")
        data = str(self.root / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres")
        self._run("pg_ctl", "-D", data, "-l", str(self.root / "log"), "-w", "start", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root}")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        return self

    def __exit__(self, *exc) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """A real `mlflow server` on loopback with its own SQLite store and artifact folder."""

    def __init__(self, root: Path, port: int | None = None, backend_store: str | None = None):
        self.root, self.port = root, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend_store = backend_store or f"sqlite:///{root / 'mlflow.db'}"
        self.proc = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", self.backend_store,
                "--artifacts-destination", str(self.root / "artifacts")]

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not self.wait_healthy(lambda: self.proc.poll() is None):
            self.stop()
            raise RuntimeError("mlflow server did not start")
        return self

    def wait_healthy(self, alive=lambda: True) -> bool:
        """Wait until the server answers its health check; False if it died first."""
        import requests

        while alive():
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return True
            except requests.RequestException:
                time.sleep(0.5)
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def client(self):
        import mlflow

        return mlflow.MlflowClient(self.url)


# ---- work shared by the whole session ------------------------------------------------------------
#
# The suite's longest pieces of work do not depend on each other: the tiny pipeline built with
# tracking on a real MLflow server (read by most end-to-end tests), a second independent build
# (the repeatability check) and the model tests rerun on the jax backend. Each runs once per test
# session, in its own process, started by whichever test worker needs it first (`pytest -n 2`
# runs two workers), so it runs beside the unit tests; a fixture that needs its result waits for
# it. Nothing depends on timing: a waiting fixture blocks until the job has written its exit code.

# Runs a command with its output in ``log``, then writes its exit status to ``rc`` (atomically).
_RUN_AND_RECORD = 'cd "$1" && shift && "$@" >"$LOG" 2>&1; echo $? >"$RC.tmp" && mv "$RC.tmp" "$RC"'

# Runs a command (in a process group of its own) while the test session's main process lives:
# when the session ends, the command is stopped with everything it started.
_WHILE_SESSION = """
import os, signal, subprocess, sys, time
owner, proc = int(sys.argv[1]), subprocess.Popen(sys.argv[2:], start_new_session=True)
while proc.poll() is None:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        os.killpg(proc.pid, signal.SIGTERM)
        break
    time.sleep(1)
proc.wait()
"""


def while_session(owner: int, args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WHILE_SESSION, str(owner), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedJob:
    """A command run once per session, whichever worker starts it; every worker can wait for it."""

    def __init__(self, folder: Path):
        self.folder = folder

    def start(self, owner: int, args: list[str], cwd: Path, env: dict, nice: int = 0) -> None:
        """Run ``args`` in ``cwd``; ``nice`` > 0 lets it have only the CPU the tests leave idle."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**env, "LOG": str(self.folder / "log"), "RC": str(self.folder / "rc")}
        if nice:
            args = ["nice", "-n", str(nice), *args]
        while_session(owner, ["sh", "-c", _RUN_AND_RECORD, "sh", str(cwd), *args], env)

    def wait(self) -> tuple[int, str]:
        rc = self.folder / "rc"
        while not rc.is_file():
            time.sleep(0.5)
        return int(rc.read_text()), (self.folder / "log").read_text(errors="replace")


@dataclass
class Shared:
    root: Path

    def job(self, name: str) -> SharedJob:
        return SharedJob(self.root / name)

    def project(self, name: str) -> Path:
        return self.root / f"{name}-project" / "project"

    @property
    def server(self) -> MlflowServer:
        return MlflowServer(self.root / "mlflow", int((self.root / "mlflow.port").read_text()))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.fixture(scope="session")
def shared(tmp_path_factory, request) -> Shared:
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if _is_worker(request.config) else base) / "shared"
    root.mkdir(exist_ok=True)
    return Shared(root)


def tiny_project(where: Path, **blocks: dict) -> Path:
    project = copy_project(where)
    set_params(project, **TINY_PIPELINE)
    set_params(project, **blocks)
    commit_all(project, "tiny params")
    return project


def make_rgba_sprites(root: Path, count: int, size: int = 24, seed: int = 0,
                      radius: tuple[int, int] | None = None, bar: bool = False) -> None:
    """A flat folder (no labels) of RGBA PNG sprites: a coloured disc on a transparent ground,
    its radius drawn from ``radius`` (default ``size // 8`` to ``size // 5``); ``bar`` adds a
    half-transparent bar of another colour."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    low, high = radius or (size // 8, size // 5 + 1)
    y, x = np.mgrid[:size, :size]
    for i in range(count):
        sprite = np.zeros((size, size, 4), np.uint8)
        cx, cy = rng.integers(size // 3, 2 * size // 3, 2)  # never near the corners
        disc = (x - cx) ** 2 + (y - cy) ** 2 < rng.integers(low, high) ** 2
        sprite[disc, :3] = rng.integers(0, 256, 3)
        sprite[disc, 3] = 255
        if bar:
            top, left = rng.integers(size // 4, size // 2, 2)
            box = (slice(top, top + size // 3), slice(left, left + size // 10))
            sprite[box][..., :3], sprite[box][..., 3] = rng.integers(0, 256, 3), 200
        Image.fromarray(sprite, "RGBA").save(root / f"sprite_{i:04d}.png")


MODEL_TESTS = ["tests/test_autoencoders.py", "tests/test_generative.py"]
_NEEDED = pytest.StashKey[set]()


# The jobs few tests wait for, and late (see pytest_collection_modifyitems), run niced: the
# `built` job, which most of the slow tests wait for, and the tests themselves come first.
BACKGROUND = 10


# The files whose tests on the built project are long chains of one process after another
# (a Prefect deployment, a sweep, a tracking outage): they start first among those that wait for
# it, so that none of them is left running alone at the end.
LONG_CHAINS = ("test_tracking.py", "test_flows.py", "test_sweep.py")


def pytest_collection_modifyitems(session, config, items):
    """Tests that wait for a shared job run after the rest, so the jobs overlap the unit tests;
    those waiting for the niced jobs (BACKGROUND) last."""
    def order(item) -> tuple[int, int]:
        names = set(getattr(item, "fixturenames", ()))
        waits = (3 if "jax_model_tests" in names
                 else 2 if names & {"rebuilt", "unlabeled_built"}
                 else 1 if names & {"built", "built_copy"} else 0)
        return waits, int(waits != 1 or item.path.name not in LONG_CHAINS)

    items.sort(key=order)
    config.stash[_NEEDED] = {name for item in items for name in getattr(item, "fixturenames", ())}


@pytest.fixture(scope="session", autouse=True)
def _start_shared_jobs(request, shared, _hermetic_environment) -> None:
    """Start, once per session, each shared job a collected test needs."""
    needed = request.config.stash.get(_NEEDED, set())
    owner = os.getppid() if _is_worker(request.config) else os.getpid()
    with _locked(shared.root / "start.lock"):
        if (shared.root / "started").is_file():
            return
        python_dvc = [sys.executable, "-m", "dvc", "repro"]
        if needed & {"built", "built_copy", "mlflow_server"}:
            server = MlflowServer(shared.root / "mlflow")
            server.root.mkdir()
            watch = while_session(owner, server.command())
            (shared.root / "mlflow.port").write_text(str(server.port))
            if not server.wait_healthy(lambda: watch.poll() is None):
                raise RuntimeError("mlflow server did not start")
            project = tiny_project(shared.project("built").parent)
            shared.job("built").start(owner, python_dvc, project, dvc_env(server.url))
        if "unlabeled_built" in needed:
            images = shared.root / "sprites"
            make_rgba_sprites(images, 160)
            project = tiny_project(shared.project("unlabeled").parent,
                                   data={"source": "folder", "local_dir": str(images)},
                                   downsample={"image_size": 16, "channels": 3},
                                   pretrain={"contrastive_weight": 0.05})
            # On jax: the whole pipeline on the other backend (and no TensorFlow import per stage),
            # through the contrastive autoencoder of the default params.
            shared.job("unlabeled").start(owner, python_dvc, project,
                                          {**dvc_env(), "KERAS_BACKEND": "jax"}, nice=BACKGROUND)
        if "rebuilt" in needed:
            project = tiny_project(shared.project("rebuilt").parent)
            shared.job("rebuilt").start(owner, python_dvc, project, dvc_env(), nice=BACKGROUND)
        if "jax_model_tests" in needed:
            env = {**os.environ, "KERAS_BACKEND": "jax", "LATENTLAB_BLOCK_TENSORFLOW": "1"}
            args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                    "no:warnings", "-p", "no:xdist", "--basetemp", str(shared.root / "jax-tmp"),
                    "-m", "not stage_process", *MODEL_TESTS]
            shared.job("jax_model_tests").start(owner, args, ROOT, env, nice=BACKGROUND)
        (shared.root / "started").write_text("")


def _finished(shared: Shared, name: str) -> str:
    code, output = shared.job(name).wait()
    assert code == 0, f"{name} failed (exit status {code}):\n{output[-6000:]}"
    return output


@pytest.fixture(scope="session")
def mlflow_server(shared) -> MlflowServer:
    """The session's real MLflow server on loopback (it stops when the session ends)."""
    server = shared.server
    assert server.wait_healthy(), "the session's mlflow server is not running"
    return server


@dataclass
class Built:
    project: Path
    output: str            # what the first `dvc repro` printed
    server: MlflowServer   # where its runs were tracked
    parent_run_id: str     # the MLflow parent run of that pipeline execution


@pytest.fixture(scope="session")
def built(shared, mlflow_server) -> Built:
    """The whole DAG on tiny params, run once with tracking on a real MLflow server. Read-only:
    tests that change the project take ``built_copy``."""
    output = _finished(shared, "built")
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("latentlab")
    parents = [r for r in client.search_runs([experiment.experiment_id],
                                             "tags.`latentlab.kind` = 'pipeline'")
               if r.data.tags["latentlab.pipeline_key"].startswith("dvc-")]
    first = min(parents, key=lambda r: r.info.start_time)
    return Built(shared.project("built"), output, mlflow_server, first.info.run_id)


@pytest.fixture(scope="session")
def rebuilt(shared) -> Path:
    """A second, independent build of the same tiny project (tracking off)."""
    _finished(shared, "rebuilt")
    return shared.project("rebuilt")


@pytest.fixture(scope="session")
def unlabeled_built(shared) -> tuple[Path, str]:
    """The tiny pipeline on a flat folder of RGBA sprites (no labels), 16×16 RGB, run with
    KERAS_BACKEND=jax: (project, output)."""
    return shared.project("unlabeled"), _finished(shared, "unlabeled")


@pytest.fixture(scope="session")
def jax_model_tests(shared) -> str:
    """The output of the model tests rerun with KERAS_BACKEND=jax and tensorflow unimportable."""
    return _finished(shared, "jax_model_tests")


@pytest.fixture
def built_copy(built, tmp_path) -> Path:
    """A private copy of the built project (git repo, DVC cache, outputs, checkpoints)."""
    dest = tmp_path / "project"
    shutil.copytree(built.project, dest, symlinks=True)
    return dest
