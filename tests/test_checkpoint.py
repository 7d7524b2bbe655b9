"""The one checkpoint mechanism: keyed, atomic, and whole after a crash at any point of a save."""

from __future__ import annotations

import logging
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


@pytest.mark.parametrize("damage", ["truncated arrays", "garbled arrays", "garbled index"])
def test_an_unreadable_checkpoint_is_set_aside_and_training_starts_afresh(tmp_path, damage, caplog):
    directory = tmp_path / "train_gan"
    Checkpoint(directory, "k").save({"epoch": 3}, state=arrays(1.0))
    npz = next(directory.glob("*.npz"))
    data = bytearray(npz.read_bytes())
    if damage == "truncated arrays":
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "garbled arrays":
        data[len(data) // 3: len(data) // 3 + 8] = b"\xff" * 8
        npz.write_bytes(bytes(data))
    else:
        (directory / INDEX).write_text('{"key": "k", "sta')
    with caplog.at_level(logging.WARNING):
        assert Checkpoint(directory, "k").load() is None
    assert f"{directory}: the checkpoint cannot be read (" in caplog.text
    assert f"set aside as {tmp_path / 'train_gan.unreadable'}, training starts afresh" in caplog.text
    assert (tmp_path / "train_gan.unreadable" / INDEX).is_file()  # kept for a look, not lost
    assert list(directory.iterdir()) == []
    fresh = Checkpoint(directory, "k")
    fresh.save({"epoch": 0}, state=arrays(2.0))
    assert Checkpoint(directory, "k").load() == {"epoch": 0}


@pytest.mark.parametrize("fail_on", ["arrays", "index"])
def test_a_full_disk_during_a_save_names_the_file_and_leaves_the_old_checkpoint_alone(
        tmp_path, monkeypatch, fail_on):
    import errno

    import latentlab.io
    from latentlab.training import checkpoint as module

    first = Checkpoint(tmp_path, "k1")
    first.save({"epoch": 0}, last=arrays(1.0))
    before = sorted(p.name for p in tmp_path.iterdir())

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if fail_on == "arrays":
        monkeypatch.setattr(module.np, "savez", full)
    else:
        monkeypatch.setattr(latentlab.io.Path, "write_text", full)
    with pytest.raises(OSError) as raised:
        first.save({"epoch": 1}, last=arrays(2.0))
    assert raised.value.errno == errno.ENOSPC and str(tmp_path) in raised.value.filename
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no tmp.* file left
    monkeypatch.undo()
    again = Checkpoint(tmp_path, "k1")
    assert again.load() == {"epoch": 0}
    np.testing.assert_array_equal(again.arrays("last")["w"], arrays(1.0)["w"])
