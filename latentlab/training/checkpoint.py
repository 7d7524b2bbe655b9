"""The one checkpoint mechanism: a directory, a key, atomic saves, a load that refuses strangers.

A checkpoint belongs to one configuration. Its ``key`` hashes what makes a saved state unusable
elsewhere (the architecture, the data, the optimizer); a checkpoint made under another key is
discarded, never resumed. Each save writes the named array files under new names first, then
``checkpoint.json`` (the key, the caller's JSON state and the names of its array files) by an
atomic rename, then deletes the files no longer named: a kill at any moment leaves either the
previous checkpoint or the new one, whole.

Used by the Keras fits (`fit.py`), the custom loops (`loop.py`) and the label-efficiency journal.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from latentlab.io import write_text_atomic

log = logging.getLogger(__name__)

INDEX = "checkpoint.json"


class Checkpoint:
    """A directory holding one configuration's saved training state."""

    def __init__(self, directory: Path, key: str):
        self.directory, self.key = Path(directory), key
        self._files: dict[str, str] = {}
        self._generation = 0

    def load(self, epochs: int | None = None) -> dict | None:
        """The saved JSON state if a whole checkpoint under this key is here; else clear the
        directory (a checkpoint of other params or data, or none) and return None.

        Training keys leave the number of epochs out, so that more epochs continue; given
        ``epochs``, a checkpoint whose state is past them (``state["epoch"]``, 0-based) does not
        match these params either and is cleared too.
        """
        index = self.directory / INDEX
        if index.is_file():
            saved = self._readable()
            if saved is None:
                return None
            files = saved.get("files", {})
            if saved.get("key") != self.key or not all((self.directory / f).is_file()
                                                       for f in files.values()):
                log.info("%s: checkpoint is for other params or data; starting afresh",
                         self.directory)
            elif epochs is not None and saved["state"]["epoch"] + 1 > epochs:
                log.info("%s: the checkpoint is after epoch %d, past epochs=%d; starting afresh",
                         self.directory, saved["state"]["epoch"] + 1, epochs)
            else:
                self._files, self._generation = files, saved.get("generation", 0)
                return saved["state"]
        self.clear()
        return None

    def _readable(self) -> dict | None:
        """The saved index when it and every array file it names can be read whole; else the
        directory is set aside (renamed ``<name>.unreadable``, with a warning) and None."""
        try:
            saved = json.loads((self.directory / INDEX).read_text())
            if not isinstance(saved.get("state"), dict) or not isinstance(saved.get("files"), dict):
                raise ValueError(f"{INDEX} lacks its state or its files")
            for filename in saved["files"].values():
                if (self.directory / filename).is_file():
                    with np.load(self.directory / filename) as arrays:
                        for name in arrays.files:
                            arrays[name]  # reads the member whole: a damaged one fails its CRC
        except Exception as exc:  # noqa: BLE001 - whatever is damaged, the remedy is the same
            aside = self.directory.with_name(f"{self.directory.name}.unreadable")
            shutil.rmtree(aside, ignore_errors=True)
            self.directory.rename(aside)
            log.warning("%s: the checkpoint cannot be read (%s: %s); set aside as %s, training "
                        "starts afresh", self.directory, type(exc).__name__, exc, aside)
            self.clear()
            return None
        return saved

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files, self._generation = {}, 0

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays saved under ``name`` by the checkpoint last loaded or saved."""
        with np.load(self.directory / self._files[name]) as saved:
            return {k: saved[k] for k in saved.files}

    def has(self, name: str) -> bool:
        return name in self._files

    def save(self, state: dict, /, **arrays: dict[str, np.ndarray]) -> None:
        """Write ``state`` (JSON-able) and the given named array sets as the new checkpoint;
        array sets not given keep their previous files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        generation = self._generation + 1
        files = dict(self._files)
        written: list[Path] = []
        try:
            for name, values in arrays.items():
                filename = f"{name}.{generation:06d}.npz"
                tmp = self.directory / f"tmp.{filename}"
                written.append(tmp)
                with open(tmp, "wb") as f:
                    np.savez(f, **values)
                os.replace(tmp, self.directory / filename)
                written.append(self.directory / filename)
                files[name] = filename
            payload = {"key": self.key, "generation": generation, "files": files, "state": state}
            write_text_atomic(self.directory / INDEX, json.dumps(payload))
        except OSError as exc:  # e.g. the disk is full: the previous checkpoint stays whole
            for path in written:
                path.unlink(missing_ok=True)
            raise OSError(exc.errno, f"{exc.strerror} while saving a checkpoint",
                          str(exc.filename or (written[-1] if written else self.directory))) from exc
        self._files, self._generation = files, generation
        keep = {INDEX, *files.values()}
        for path in self.directory.iterdir():
            leftover = path.suffix in (".npz", ".tmp") or path.name.startswith("tmp.")
            if path.is_file() and path.name not in keep and leftover:
                path.unlink()
