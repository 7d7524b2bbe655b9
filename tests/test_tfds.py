"""The real TFDS path: the oxford_flowers102 builder's own code on files in its download layout."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
import yaml

from latentlab.errors import UserError
from stages import download, downsample
from tests.flowers102_files import make_files, url_infos
from tests.support.data import make_params
from tests.support.project import ROOT

DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens: any network use fails at once


@pytest.fixture
def offline(monkeypatch):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, DEAD_PROXY)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def flowers_params(manual_dir, **downsample_block):
    return make_params(
        data={"source": "tfds:oxford_flowers102", "local_dir": str(manual_dir),
              "download_retries": 0},
        downsample={"image_size": 16, "channels": 3, **downsample_block},
    )


def test_the_real_flowers_builder_runs_download_and_downsample_offline(tmp_path, offline,
                                                                      monkeypatch):
    manual = tmp_path / "external"
    ids = make_files(manual, per_split=12)
    # The builder, its download manager, extraction and checksum check are TFDS's own; only the
    # published checksums are swapped for those of the files made here.
    monkeypatch.setattr(tfds.builder_cls("oxford_flowers102"), "url_infos", url_infos(manual))
    params = flowers_params(manual)
    meta = download.run(params, tmp_path / "raw")
    assert meta["splits"] == {"train": "train", "val": "validation", "test": "test"}
    assert len(meta["class_names"]) == 102 and meta["class_names"][0] == "pink primrose"
    prepared = downsample.run(params, tmp_path / "raw", tmp_path / "prepared", tmp_path / "card")
    assert prepared["counts"] == {"train": 12, "val": 12, "test": 12}
    assert prepared["image_shape"] == [16, 16, 3]
    labels = np.load(tmp_path / "prepared/train_labels.npy")
    # image_00001 has class 1 in imagelabels.mat, stored 0-based by the builder
    assert sorted(labels.tolist()) == sorted((i - 1) % 3 for i in ids["trnid"])
    images = np.load(tmp_path / "prepared/train_images.npy")
    assert images.std() > 20  # decoded pictures, not a constant fill


def test_a_file_that_is_not_the_published_one_is_a_clear_error(tmp_path, offline):
    manual = tmp_path / "external"
    make_files(manual, per_split=2)  # the published checksums apply: these files differ
    with pytest.raises(UserError, match=r"tfds:oxford_flowers102: a file does not match the "
                                        r"dataset's published checksum.*download it again"):
        download.run(flowers_params(manual), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_offline_without_the_files_says_where_to_put_them_and_exits_2(tmp_path, offline):
    import os

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"data": {"source": "tfds:oxford_flowers102", "local_dir": "manual",
                  "download_retries": 0}}))
    proc = subprocess.run([sys.executable, "-m", "stages.download"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    message = proc.stderr
    assert "cuInit" not in message and "absl::InitializeLog" not in message  # TF's native lines
    assert "tfds:oxford_flowers102 could not be downloaded" in message
    assert "102flowers.tgz from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz" \
        in message
    assert f"into data.local_dir ({tmp_path / 'manual'})" in message
    assert "TFDS prepares the dataset from those files into data/raw/tfds" in message
    assert not (tmp_path / "data" / "raw").exists()
