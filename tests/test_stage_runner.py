"""What every stage's `main()` shares: a SIGTERM (a scheduler's stop, `timeout`, `kill`) unwinds
the stage like Ctrl-C, so that its staged outputs are removed, not left hidden beside them; on
jax, the compilation cache's settings apply."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from tests.support.project import ROOT

STAGE = """
import time
from pathlib import Path
from latentlab.io import staged_dir
from latentlab.stage_runner import run_stage

def body(params):
    with staged_dir(Path("data/prepared")) as staging:
        (staging / "train_images.npy").write_bytes(b"half of it")
        Path("ready").touch()
        time.sleep(600)

run_stage("downsample", body)
"""


def _started(script: str, where, mark: str) -> subprocess.Popen:
    """``script`` run as a stage process in ``where``, once it has created the file ``mark``."""
    shutil.copy(ROOT / "params.yaml", where / "params.yaml")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=where, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)
    while not (where / mark).exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    return proc


def test_sigterm_removes_the_staged_outputs_and_exits_143(tmp_path):
    proc = _started(STAGE, tmp_path, "ready")  # the stage is writing its outputs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stage downsample terminated (SIGTERM); no partial output was kept" in err
    assert "Traceback" not in err
    assert list((tmp_path / "data").iterdir()) == []  # no hidden .prepared.* left


EXITING = """
import atexit, time
from pathlib import Path
from latentlab.stage_runner import run_stage

def slow_exit():  # as TensorFlow's or MLflow's exit handlers can take seconds
    Path("exiting").touch()
    while not Path("signalled").exists():
        time.sleep(0.05)

def body(params):
    atexit.register(slow_exit)

run_stage("train_gan", body)
"""


def test_ctrl_c_while_the_stage_exits_is_not_swallowed(tmp_path):
    """Its work done, the stage exits through slow exit handlers; Ctrl-C there still ends it with
    130, so that `dvc repro` stops instead of running the next stage."""
    proc = _started(EXITING, tmp_path, "exiting")
    proc.send_signal(signal.SIGINT)
    (tmp_path / "signalled").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted while exiting" in err


def test_the_jax_cache_settings_apply_when_jax_was_imported_first(tmp_path):
    """jax reads its cache settings from the environment only at import; a stage (or a test
    session) that imported jax before setting them still gets them."""
    script = """
import os, jax
from latentlab.stage_runner import use_jax_compile_cache
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["LATER"]
use_jax_compile_cache()
jax.jit(lambda x: x * 3)(jax.numpy.ones(2)).block_until_ready()
print(jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "LATER": str(tmp_path)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.split() == [str(tmp_path), "0.0"]
    assert any(path.name.endswith("-cache") for path in tmp_path.iterdir())  # a program is there
