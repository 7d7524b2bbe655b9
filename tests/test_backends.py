"""The model and training tests again on the jax backend, with tensorflow made unimportable:
the same code must train on a machine that has jax and no tensorflow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

MODEL_TESTS = ["tests/test_autoencoders.py", "tests/test_generative.py"]


def test_model_tests_pass_on_jax_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax", "LATENTLAB_BLOCK_TENSORFLOW": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
         *MODEL_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout
