"""Outputs appear whole or not at all; a stage run that was killed leaves nothing behind for long."""

from __future__ import annotations

import errno
import json
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


def test_metrics_files_hold_standard_json_with_a_word_for_each_missing_number(tmp_path):
    from latentlab.io import write_json

    path = tmp_path / "m.json"
    write_json(path, {"fd": 1.5, "fd_to_noise": float("inf"), "kid": float("nan"),
                      "deep": {"x": float("-inf")}, "curve": [1.0, float("nan")]})

    def refuse(word):
        raise ValueError(f"{word} in a metrics file")

    saved = json.loads(path.read_text(), parse_constant=refuse)
    assert saved["fd"] == 1.5 and saved["fd_to_noise"] is None and saved["kid"] is None
    assert saved["not_finite"] == {"fd_to_noise": "Infinity", "kid": "NaN"}
    assert saved["deep"] == {"x": None, "not_finite": {"x": "-Infinity"}}
    assert saved["curve"] == [1.0, None]
