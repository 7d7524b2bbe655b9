"""The model and training tests again on the jax backend, with tensorflow made unimportable:
the same code must train on a machine that has jax and no tensorflow. The run itself starts with
the session (see the shared jobs in conftest) and leaves out the tests marked `stage_process`,
which run stages as processes and test nothing backend-specific; this test reads its result."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_model_tests_pass_on_jax_without_tensorflow(jax_model_tests):
    summary = jax_model_tests.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, jax_model_tests[-4000:]
    assert not re.search(r"skipped|failed|error", summary), summary
