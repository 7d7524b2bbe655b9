"""Data-parallel training (Keras' distribution API on jax) over 8 virtual CPU devices: the same
loss curve as one device, and checkpoints that resume across device counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.project import ROOT

CHILD = """
import json, sys
from tests.support.uninstalled import hide_packages
hide_packages("tensorflow", "tensorflow_datasets")  # as on a GPU machine: jax without tensorflow
import keras
import numpy as np
from pathlib import Path
from latentlab.training import shim
from stages import train
from tests.support.data import make_params
from tests.test_generative import TINY_VAE

prepared, out = Path(sys.argv[1]), Path(sys.argv[2])
report = []
for leg in sys.argv[3:]:  # "parallel:epochs" or "single:epochs", one after the other
    mode, epochs = leg.split(":")
    devices = shim.setup_data_parallel() if mode == "parallel" else 1
    if mode == "single":
        keras.distribution.set_distribution(None)
    batch = shim.shard(np.zeros((16, 8, 8, 1), "float32"), 16)
    small = {"images_seen": 128 * int(epochs), "min_epoch_images": 1, "max_train_images": 128}
    params = make_params(train_vae={**TINY_VAE, **small})
    where = out / "vae"
    train.run(params, "vae", prepared, *(where / k for k in ("models", "ck", "m.json", "h.csv", "s")))
    on = len(batch.sharding.device_set) if hasattr(batch, "sharding") else 1  # numpy: host only
    report.append({"devices": devices, "batch_on": on})
print(json.dumps(report))
"""


def train(prepared, out, *legs: str) -> list[dict]:
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "LATENTLAB_DATA_PARALLEL": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(prepared), str(out), *legs],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def history(path) -> list[dict[str, float]]:
    lines = path.read_text().splitlines()
    keys = lines[0].split(",")
    return [dict(zip(keys, map(float, line.split(",")))) for line in lines[1:]]


def test_eight_devices_follow_one_device_and_resume_across_device_counts(digits_prepared, tmp_path):
    single = train(digits_prepared, tmp_path / "one", "single:3")
    assert single == [{"devices": 1, "batch_on": 1}]
    # 2 epochs over 8 devices, then that checkpoint continued for a third epoch on one device
    split = train(digits_prepared, tmp_path / "eight", "parallel:2", "single:3")
    assert split[0] == {"devices": 8, "batch_on": 8}  # every batch split over the 8 devices
    assert split[1] == {"devices": 1, "batch_on": 1}
    for name in ("vae",):
        one, eight = history(tmp_path / "one" / name / "h.csv"), history(tmp_path / "eight" / name / "h.csv")
        assert len(one) == len(eight) == 3
        for a, b in zip(one, eight):  # the same curve, up to the order of float additions
            assert b == pytest.approx(a, rel=1e-3, abs=1e-5), name
