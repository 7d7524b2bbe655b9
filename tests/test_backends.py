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


def test_a_jax_stage_never_imports_tensorflow_and_shares_its_compiled_programs(digits_prepared,
                                                                              tmp_path):
    """With only the backend set, a jax training stage (the contrastive autoencoder) never imports
    the installed tensorflow (it costs seconds a stage), and keeps what XLA compiled under
    XDG_CACHE_HOME; the same stage in another project then compiles nothing new and writes the
    same metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(KERAS_BACKEND="jax", XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    block = {"codings": 4, "conv_filters": [4], "images_seen": 1439, "min_epoch_images": 1}
    cache, metrics, entries = tmp_path / "cache/latentlab/jax", [], []
    for name, flags in (("a", ["-X", "importtime"]), ("b", [])):
        project = tmp_path / name
        (project / "data").mkdir(parents=True)
        os.symlink(digits_prepared, project / "data/prepared")
        (project / "params.yaml").write_text(yaml.safe_dump({"pretrain": block}))
        proc = subprocess.run([sys.executable, *flags, "-m", "stages.pretrain"], cwd=project,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics.append((project / "metrics/pretrain.json").read_text())
        entries.append(sorted(p.name for p in cache.iterdir()))
        if flags:  # every module the stage imported, one line each
            assert re.search(r"\|\s+keras\.src\.backend\.jax$", proc.stderr, re.M), proc.stderr[-2000:]
            imported = re.findall(r"\|\s+(tensorflow\S*)$", proc.stderr, re.M)
            assert imported == [], imported[:5]
    assert len(entries[0]) > 10, entries[0]  # the first run filled it, small programs included
    assert entries[1] == entries[0]
    assert metrics[1] == metrics[0]
