"""The model and training tests again on the jax backend, with tensorflow made unimportable:
the same code must train on a machine that has jax and no tensorflow. The run itself starts with
the session (see the shared jobs in conftest) and runs the tests marked `jax`: the code that
has a path of its own on each backend (the custom loops' steps, checkpoints and resume, the
samplers); this test reads its result."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.support.project import ROOT

pytestmark = pytest.mark.slow


def test_model_tests_pass_on_jax_without_tensorflow(jax_model_tests):
    summary = jax_model_tests.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, jax_model_tests[-4000:]
    assert not re.search(r"skipped|failed|error", summary), summary


def test_a_training_stage_on_jax_never_imports_an_installed_tensorflow(digits_prepared, tmp_path):
    # TensorFlow is installed here; on jax it must not be imported (it costs seconds per stage).
    script = f"""
import sys
from pathlib import Path
from stages import pretrain
from tests.support.data import make_params
params = make_params(pretrain={{"codings": 4, "conv_filters": [4], "images_seen": 1439, "min_epoch_images": 1}})
out = Path({str(tmp_path)!r})
pretrain.run(params, Path({str(digits_prepared)!r}), out / "models", out / "ck", out / "m.json",
             out / "h.csv")
print("imported:", sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")[:3])
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported: []" in proc.stdout, proc.stdout


def test_jax_stages_share_their_compiled_programs_through_the_users_cache(digits_prepared,
                                                                          tmp_path):
    """With only the backend set, a jax stage keeps what XLA compiled under XDG_CACHE_HOME; the
    same stage in another project then compiles nothing new and writes the same metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(KERAS_BACKEND="jax", XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    block = {"codings": 4, "conv_filters": [4], "images_seen": 1439, "min_epoch_images": 1,
             "contrastive_weight": 0.0}
    cache, metrics, entries = tmp_path / "cache/latentlab/jax", [], []
    for name in ("a", "b"):
        project = tmp_path / name
        (project / "data").mkdir(parents=True)
        os.symlink(digits_prepared, project / "data/prepared")
        (project / "params.yaml").write_text(yaml.safe_dump({"pretrain": block}))
        proc = subprocess.run([sys.executable, "-m", "stages.pretrain"], cwd=project, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics.append((project / "metrics/pretrain.json").read_text())
        entries.append(sorted(p.name for p in cache.iterdir()))
    assert len(entries[0]) > 10, entries[0]  # the first run filled it, small programs included
    assert entries[1] == entries[0]
    assert metrics[1] == metrics[0]
