"""The suite's fixtures and hooks: a hermetic environment, real servers on loopback, and the work
shared by the whole session (the tiny project built once: read-only checks use it; tests that
change things get a copy of it, DVC cache included, so only the changed tail reruns).

The helpers they are made of live in tests/support/."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

if os.environ.get("LATENTLAB_BLOCK_TENSORFLOW") == "1":
    # As if tensorflow were not installed, to prove the jax backend does not need it: the finder
    # of installed packages no longer sees it, so importing it fails (ModuleNotFoundError), asking
    # whether it is there (`importlib.util.find_spec`, as jax's compilation cache does through
    # etils) answers no, and its name stays out of `sys.modules` (where Keras' random image
    # layers look for a tensorflow to use).
    from tests.support.uninstalled import hide_packages

    hide_packages("tensorflow", "tensorflow_datasets")

import pytest  # noqa: E402

from latentlab.stage_runner import use_jax_compile_cache  # noqa: E402
from latentlab.training.label_efficiency import one_thread  # noqa: E402
from tests.support.data import make_params, make_rgba_sprites  # noqa: E402
from tests.support.jobs import Shared, alive, locked, while_session  # noqa: E402
from tests.support.project import ROOT, copy_project, dvc_env, tiny_project  # noqa: E402
from tests.support.servers import FileServer, MlflowServer  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The fine-tune's classifiers compute on one thread in whichever process trains them (the
# stage's own or a worker of its pool); so does a test process, so that a stage run in it gives
# the numbers of the stage's processes.
one_thread()


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment(tmp_path_factory, request):
    """No test reads or writes the user's Prefect home, Prefect or MLflow server, MLflow store or
    jax compilation cache: each test that needs one passes its own, and the session's jax
    programs are cached in one folder of its own (every small one too, as the stages do);
    analytics stay off (no traffic leaves the machine). Nothing else is set here: what a run
    needs to pass on a busy machine is the product's own default."""
    saved = dict(os.environ)
    cache = _session_root(tmp_path_factory, request) / "jax-cache"
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(cache)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    if "jax" in sys.modules:  # imported with the test modules, before these were set
        use_jax_compile_cache()
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILES_PATH",
                 "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "DVC_EXP_NAME"):
        os.environ.pop(name, None)
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["LATENTLAB_TRACKING"] = "0"
    os.environ["LATENTLAB_PROCESSES"] = "1"  # the test workers have the cores already
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _float32_between_tests():
    """A stage sets Keras' global dtype policy (`latentlab.precision`); the next test in this
    process starts from Keras' own float32 again, whichever stage ran before it."""
    yield
    if "keras" in sys.modules:
        import keras

        keras.config.set_dtype_policy("float32")


@pytest.fixture
def file_server():
    servers = []

    def start(files: dict[str, bytes]) -> FileServer:
        servers.append(FileServer(files))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


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


# ---- work shared by the whole session ------------------------------------------------------------
#
# The suite's longest pieces of work do not depend on each other: the tiny pipeline built with
# tracking on a real MLflow server (read by most end-to-end tests), a second independent build
# (the repeatability check), the pipeline on an unlabeled folder on jax, and the model tests rerun
# on the jax backend. Each runs once per test session, in its own process, started by whichever
# test worker needs it first (`pytest -n 2` runs two workers), so it runs beside the unit tests; a
# fixture that needs its result waits for it. Only the jobs that the selected tests (after -k, -m
# and --deselect) need are started. Nothing depends on timing: a waiting fixture blocks until the
# job has written its exit code, or fails at once with the job's log when the job died.

MODEL_TESTS = ["tests/test_autoencoders.py", "tests/test_generative.py", "tests/test_diffusion.py"]
_NEEDED = pytest.StashKey[set]()

# The jobs few tests wait for, and late (see pytest_collection_modifyitems), run niced: the
# `built` job, which most of the slow tests wait for, and the tests themselves come first.
BACKGROUND = 10

# The files whose tests on the built project are long chains of one process after another
# (a Prefect deployment, a sweep, a tracking outage): they start first among those that wait for
# it, so that none of them is left running alone at the end.
LONG_CHAINS = ("test_tracking.py", "test_flows.py", "test_sweep.py")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _session_root(tmp_path_factory, request) -> Path:
    """The folder every worker of the session shares (each worker's own is inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if _is_worker(request.config) else base


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


def pytest_collection_finish(session):
    """Record the fixtures of the tests that will run: deselection (-k, -m, --deselect) is over."""
    session.config.stash[_NEEDED] = {name for item in session.items
                                     for name in getattr(item, "fixturenames", ())}


@pytest.fixture(scope="session")
def shared(tmp_path_factory, request) -> Shared:
    root = _session_root(tmp_path_factory, request) / "shared"
    root.mkdir(exist_ok=True)
    return Shared(root)


@pytest.fixture(scope="session", autouse=True)
def _start_shared_jobs(request, shared, _hermetic_environment) -> None:
    """Start, once per session, each shared job a selected test needs."""
    needed = request.config.stash.get(_NEEDED, set())
    owner = os.getppid() if _is_worker(request.config) else os.getpid()
    with locked(shared.root / "start.lock"):
        if (shared.root / "started").is_file():
            return
        python_dvc = [sys.executable, "-m", "dvc", "repro"]
        if needed & {"built", "built_copy", "mlflow_server"}:
            server = MlflowServer(shared.root / "mlflow")
            server.root.mkdir()
            watcher = while_session(owner, server.command(), server.environment())
            (shared.root / "mlflow.port").write_text(str(server.port))
            (shared.root / "mlflow.pid").write_text(str(watcher.pid))
        if needed & {"built", "built_copy"}:
            project = tiny_project(shared.project("built").parent)
            if not server.wait_healthy(lambda: alive(watcher.pid)):
                raise RuntimeError("the session's mlflow server exited before it answered")
            shared.job("built").start(owner, python_dvc, project, dvc_env(server.url))
        if "unlabeled_built" in needed:
            images = shared.root / "sprites"
            make_rgba_sprites(images, 160)
            project = tiny_project(shared.project("unlabeled").parent,
                                   data={"source": "folder", "local_dir": str(images)},
                                   downsample={"image_size": 16, "channels": 3},
                                   pretrain={"contrastive_weight": 0.05},
                                   generators=["vae", "gan", "diffusion", "fastgan"],
                                   train_fastgan={"width": 4, "d_width": 8, "latent": 16,
                                                  "images_seen": 640, "min_epoch_images": 320,
                                                  "grid_size": 4},
                                   train_diffusion={"width": 8, "images_seen": 640,
                                                    "min_epoch_images": 640, "batch_size": 32,
                                                    "grid_size": 4, "steps": 5,
                                                    "steps_curve": [2, 5],
                                                    "steps_curve_samples": 100})
            # On jax: the whole pipeline on the other backend (and no TensorFlow import per stage),
            # through the contrastive autoencoder of the default params, with every generator.
            shared.job("unlabeled").start(owner, python_dvc, project,
                                          {**dvc_env(), "KERAS_BACKEND": "jax"}, nice=BACKGROUND)
        if "rebuilt" in needed:
            project = tiny_project(shared.project("rebuilt").parent)
            shared.job("rebuilt").start(owner, python_dvc, project, dvc_env(), nice=BACKGROUND)
        if "jax_model_tests" in needed:
            env = {**os.environ, "KERAS_BACKEND": "jax", "LATENTLAB_BLOCK_TENSORFLOW": "1"}
            args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                    "no:warnings", "-p", "no:xdist", "--basetemp", str(shared.root / "jax-tmp"),
                    "-m", "jax", *MODEL_TESTS]
            shared.job("jax_model_tests").start(owner, args, ROOT, env, nice=BACKGROUND)
        (shared.root / "started").write_text("")


@pytest.fixture(scope="session")
def mlflow_server(shared) -> MlflowServer:
    """The session's real MLflow server on loopback (it stops when the session ends)."""
    server = MlflowServer(shared.root / "mlflow", int((shared.root / "mlflow.port").read_text()))
    watcher = int((shared.root / "mlflow.pid").read_text())
    if not server.wait_healthy(lambda: alive(watcher)):
        pytest.fail("the session's mlflow server exited before it answered", pytrace=False)
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
    tests that run `dvc` commands that write, or change the project, take ``built_copy``."""
    output = shared.finished("built")
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
    shared.finished("rebuilt")
    return shared.project("rebuilt")


@pytest.fixture(scope="session")
def unlabeled_built(shared) -> tuple[Path, str]:
    """The tiny pipeline on a flat folder of RGBA sprites (no labels), 16×16 RGB, run with
    KERAS_BACKEND=jax: (project, output)."""
    return shared.project("unlabeled"), shared.finished("unlabeled")


@pytest.fixture(scope="session")
def jax_model_tests(shared) -> str:
    """The output of the model tests rerun with KERAS_BACKEND=jax and tensorflow unimportable."""
    return shared.finished("jax_model_tests")


@pytest.fixture
def built_copy(built, tmp_path) -> Path:
    """A private copy of the built project (git repo, DVC cache, outputs, checkpoints)."""
    dest = tmp_path / "project"
    shutil.copytree(built.project, dest, symlinks=True)
    return dest
