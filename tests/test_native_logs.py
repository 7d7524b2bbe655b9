"""A stage process's stderr filter drops native libraries' routine lines and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support.project import ROOT

CHILD = textwrap.dedent("""
    import logging, os, sys
    from latentlab.native_logs import filter_native_logs
    filter_native_logs()
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"E0000 00:00:1795701503.961207   29183 cuda_platform.cc:52] failed call to cuInit\\n")
    logging.basicConfig(format="%(levelname)s %(message)s")
    logging.getLogger("x").warning("kept 1")
    os.write(2, b"I0000 00:00:1795701503.9 29183 cpu_feature_guard.cc:227] This TensorFlow binary\\n"
                b"To enable the following instructions: AVX2 FMA, in other operations, rebuild\\n"
                b"F0000 00:00:1795701503.9 29183 fatal.cc:1] kept 2\\n")
    print("kept 3 E0000 in the middle", file=sys.stderr)
    os.write(2, b"kept 4, no newline")
    sys.exit(3)
""")


def test_native_lines_are_dropped_and_the_rest_kept_in_order_with_the_exit_status():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LATENTLAB_NATIVE_LOGS", None)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stderr == ("WARNING kept 1\n"
                           "F0000 00:00:1795701503.9 29183 fatal.cc:1] kept 2\n"
                           "kept 3 E0000 in the middle\n"
                           "kept 4, no newline")
    everything = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                                env={**env, "LATENTLAB_NATIVE_LOGS": "1"}, timeout=60)
    assert "failed call to cuInit" in everything.stderr and "To enable" in everything.stderr
