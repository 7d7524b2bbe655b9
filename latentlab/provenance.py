"""Where outputs came from: the git revision of the code that made them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision(root: Path = Path(".")) -> str:
    """The short revision of HEAD, marked when tracked files have uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{rev} (uncommitted changes)" if dirty else rev
