"""What `data.local_dir` holds, listed without opening anything that is not a regular file.

DVC would hash the folder itself if dvc.yaml named it as a dependency, and hashing opens every
entry: a FIFO blocks it forever, a socket or a broken symlink stops it with a bare OS error. So
the `index` stage lists the folder here instead (relative path, size, mtime of each regular file;
hidden entries skipped), and `download` depends on that listing. Entries that are not regular
files are skipped with a warning, or refused when `data.on_bad_image=fail`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from latentlab.errors import UserError

log = logging.getLogger(__name__)


def _odd_kind(path: Path) -> str | None:
    """Why ``path`` is not a regular file or directory we can read, or None when it is."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks; never opens the entry
    except FileNotFoundError:
        return f"a broken symlink (to {os.readlink(path)})" if path.is_symlink() else "gone"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file"


def walk(root: Path) -> tuple[list[Path], dict[Path, str]]:
    """The visible regular files under ``root`` (sorted), and the other entries with what they are.

    Symlinks to files are followed; symlinked directories are not descended into.
    """
    files: list[Path] = []
    odd: dict[Path, str] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith("."):
                continue
            path = Path(folder) / name
            kind = _odd_kind(path)
            if kind is None and path.is_file():
                files.append(path)
            elif kind is not None:
                odd[path] = kind
    return sorted(files), odd


def check_odd(odd: dict[Path, str], on_bad_image: str) -> None:
    """Refuse entries that are not regular files when asked to, else warn that they are skipped."""
    if not odd:
        return
    first, kind = next(iter(sorted(odd.items())))
    more = f", and {len(odd) - 1} more such entries" if len(odd) > 1 else ""
    if on_bad_image == "fail":
        raise UserError(
            f"{first} is {kind}, not an image file{more}; remove them from data.local_dir "
            "or set data.on_bad_image=skip"
        )
    log.warning("skipping %d entries that are not regular files, e.g. %s (%s)", len(odd), first, kind)


def index(root: Path, on_bad_image: str) -> dict:
    """The listing `download` depends on: every visible regular file's size and mtime."""
    root = root.expanduser()
    if not root.is_dir():
        return {"root": str(root), "exists": False, "files": {}, "left_out": {}}
    files, odd = walk(root)
    check_odd(odd, on_bad_image)
    listing = {}
    for path in files:
        info = path.stat()
        listing[path.relative_to(root).as_posix()] = [info.st_size, info.st_mtime_ns]
    return {
        "root": str(root),
        "exists": True,
        "files": listing,
        "left_out": {p.relative_to(root).as_posix(): kind for p, kind in sorted(odd.items())},
    }


def write_index(root: Path, out: Path, on_bad_image: str) -> dict:
    listing = index(root, on_bad_image)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    return listing
