"""The one checkpoint mechanism: keyed, atomic, and whole after a crash at any point of a save."""

from __future__ import annotations

import os

import numpy as np
import pytest

from latentlab.training.checkpoint import INDEX, Checkpoint


def arrays(value: float) -> dict[str, np.ndarray]:
    return {"w": np.full((4, 3), value, np.float32), "b": np.arange(3) * value}


def test_save_and_load_round_trip_and_another_key_starts_afresh(tmp_path):
    first = Checkpoint(tmp_path, "k1")
    assert first.load() is None
    first.save({"epoch": 0, "history": {"loss": [1.5]}}, last=arrays(1.0), best=arrays(1.0))
    first.save({"epoch": 1, "history": {"loss": [1.5, 1.2]}}, last=arrays(2.0))  # best kept

    again = Checkpoint(tmp_path, "k1")
    assert again.load() == {"epoch": 1, "history": {"loss": [1.5, 1.2]}}
    np.testing.assert_array_equal(again.arrays("last")["w"], arrays(2.0)["w"])
    np.testing.assert_array_equal(again.arrays("best")["b"], arrays(1.0)["b"])
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npz", ".npz"]  # no leftovers

    other = Checkpoint(tmp_path, "k2")  # other params or data
    assert other.load() is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("crash_at", ["arrays", "index"])
def test_a_crash_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch, crash_at):
    checkpoint = Checkpoint(tmp_path, "k")
    checkpoint.save({"epoch": 0}, state=arrays(1.0))

    real_replace = os.replace

    def crash(src, dst):
        if (crash_at == "arrays" and str(dst).endswith(".npz")) or \
                (crash_at == "index" and str(dst).endswith(INDEX)):
            raise KeyboardInterrupt("killed mid-save")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 1}, state=arrays(2.0))
    monkeypatch.setattr(os, "replace", real_replace)

    reloaded = Checkpoint(tmp_path, "k")
    assert reloaded.load() == {"epoch": 0}
    np.testing.assert_array_equal(reloaded.arrays("state")["w"], arrays(1.0)["w"])
    reloaded.save({"epoch": 1}, state=arrays(2.0))  # and the next save cleans up after the crash
    assert sorted(p.name for p in tmp_path.iterdir()) == [INDEX, "state.000002.npz"]


def test_a_checkpoint_whose_array_file_is_missing_is_not_resumed(tmp_path):
    checkpoint = Checkpoint(tmp_path, "k")
    checkpoint.save({"epoch": 3}, state=arrays(1.0))
    next(tmp_path.glob("*.npz")).unlink()
    assert Checkpoint(tmp_path, "k").load() is None
