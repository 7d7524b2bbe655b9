"""What `data.local_dir` holds, listed without opening anything that is not a regular file.

DVC would hash the folder itself if dvc.yaml named it as a dependency, and hashing opens every
entry: a FIFO blocks it forever, a socket or a broken symlink stops it with a bare OS error. So
the `index` stage lists the folder here instead (relative path, size and MD5 of each regular
file; hidden entries skipped), and `download` depends on that listing. Entries that are not
regular files are skipped with a warning, or refused when `data.on_bad_image=fail`.

The listing holds content hashes, not modification times, so a fresh clone or a `dvc exp run
--temp` workspace (where every tracked file is new) lists the same folder the same way and DVC
skips `download`. Like DVC's own state database, a stat cache next to the listing keeps each
file's hash until its size, mtime or inode changes, so an unchanged folder is only stat'ed.
"""

from __future__ import annotations

import hashlib
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

    Symlinks are followed, to files and to folders (a class folder may be a link to where its
    images live), each folder once: a link back to a folder above it is left out as a loop, and
    so is a link to a folder of the tree itself (``c1/to2 -> ../c2``: c2's images are listed
    under c2 alone, not again under c1 with c1's label) or a second link to one folder.
    """
    files: list[Path] = []
    odd: dict[Path, str] = {}
    real_root = root.resolve()
    walked: set[Path] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        here = Path(folder).resolve()
        walked.add(here)
        # A sub-folder that resolves to a folder on the path down to it would be walked forever.
        above = {here, *here.parents}
        kept = []
        for name in sorted(d for d in dirs if not d.startswith(".")):
            path = Path(folder) / name
            target = path.resolve()
            if target in above:
                odd[path] = f"a symlink loop (to {target})"
            elif path.is_symlink() and real_root in target.parents:
                odd[path] = (f"a symlink to {target.relative_to(real_root)}, a folder of the "
                             "tree itself (its images are listed there, once)")
            elif target in walked:
                odd[path] = f"a second symlink to {target} (its images are listed once)"
            else:
                walked.add(target)
                kept.append(name)
        dirs[:] = kept
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


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index(root: Path, on_bad_image: str) -> dict:
    """The listing `download` depends on: every visible regular file's size and MD5."""
    return _listing(root, on_bad_image, {})[0]


def _listing(root: Path, on_bad_image: str, cache: dict) -> tuple[dict, dict]:
    """The listing, and the stat cache of its files: absolute path → ``[size, mtime_ns, inode,
    md5]``. A file whose stat matches its entry in ``cache`` (an earlier listing's) keeps its hash
    unread."""
    root = root.expanduser()
    if not root.is_dir():
        return {"root": str(root), "exists": False, "files": {}, "left_out": {}}, {}
    files, odd = walk(root)
    check_odd(odd, on_bad_image)
    listing, fresh = {}, {}
    for path in files:
        info = path.stat()
        key = str(path.absolute())
        stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
        known = cache.get(key)
        fresh[key] = known if known is not None and known[:3] == stamp else [*stamp, _md5(path)]
        listing[path.relative_to(root).as_posix()] = [info.st_size, fresh[key][3]]
    return {
        "root": str(root),
        "exists": True,
        "files": listing,
        "left_out": {p.relative_to(root).as_posix(): kind for p, kind in sorted(odd.items())},
    }, fresh


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # first run, or a damaged cache: hash everything again
    return state if isinstance(state, dict) else {}


def write_index(root: Path, out: Path, on_bad_image: str) -> dict:
    """List ``root`` into ``out``, reusing and refreshing the stat cache beside it."""
    state_path = out.with_name(f".{out.stem}.state.json")
    listing, cache = _listing(root, on_bad_image, _read_state(state_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache))
    tmp.replace(state_path)
    return listing
