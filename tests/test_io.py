"""Outputs appear whole or not at all; a stage run that was killed leaves nothing behind for long."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from latentlab.io import staged_dir
from latentlab.stage_runner import EXIT_USER_ERROR, run_stage


def test_a_failed_block_leaves_no_output_and_the_old_one_stays(tmp_path):
    target = tmp_path / "models"
    with staged_dir(target) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), staged_dir(target) as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("the stage failed")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_staging_folders_of_a_killed_run_are_removed_by_the_next(tmp_path):
    stale = tmp_path / ".prepared.k1ll3d"  # what a `kill -9` during downsample leaves
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "train_images.npy").write_bytes(b"partial")
    other = tmp_path / ".raw.x1"  # another output's staging folder is not this run's business
    other.mkdir()
    with staged_dir(tmp_path / "prepared") as staging:
        (staging / "meta.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".raw.x1", "prepared"]


def test_a_full_disk_is_a_clear_error_with_exit_status_2(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")

    def body(params):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "models/gan/generator.keras")

    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        run_stage("train_gan", body)
    assert stopped.value.code == EXIT_USER_ERROR
    assert "the disk is full (models/gan/generator.keras); free space there and rerun" in caplog.text
