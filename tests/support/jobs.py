"""Work shared by a whole test session, whichever pytest worker starts it."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# The suite's longest pieces of work do not depend on each other: the tiny pipeline built with
# tracking on a real MLflow server (read by most end-to-end tests), a second independent build
# (the repeatability check) and the model tests rerun on the jax backend. Each runs once per test
# session, in its own process, started by whichever test worker needs it first (`pytest -n 2`
# runs two workers), so it runs beside the unit tests; a fixture that needs its result waits for
# it. Nothing depends on timing: a waiting fixture blocks until the job has written its exit code.

# Runs a command with its output in ``log``, then writes its exit status to ``rc`` (atomically).
_RUN_AND_RECORD = 'cd "$1" && shift && "$@" >"$LOG" 2>&1; echo $? >"$RC.tmp" && mv "$RC.tmp" "$RC"'

# Nices a job's autogroup (where the kernel has them: /proc/self/autogroup), then runs it niced.
# Without CAP_SYS_ADMIN the kernel takes one such change in a tenth of a second: retry a little.
_NICE_GROUP = """
if [ -f /proc/self/autogroup ]; then
  for _ in 1 2 3 4 5 6 7 8 9 10; do echo "$0" 2>/dev/null >/proc/self/autogroup && break; sleep 0.2; done
fi
exec nice -n "$0" "$@"
"""

# Runs a command (in a process group of its own) while the test session's main process lives:
# when the session ends, the command is stopped with everything it started. When the command
# ends without having written its exit status to $RC (it was killed), this writes it.
_WHILE_SESSION = """
import os, signal, subprocess, sys, time
owner, proc = int(sys.argv[1]), subprocess.Popen(sys.argv[2:], start_new_session=True)
while proc.poll() is None:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        os.killpg(proc.pid, signal.SIGTERM)
        break
    time.sleep(1)
proc.wait()
rc = os.environ.get("RC")
if rc and not os.path.exists(rc):
    with open(rc + ".tmp", "w") as out:
        out.write(str(proc.returncode))
    os.replace(rc + ".tmp", rc)
"""


def while_session(owner: int, args: list[str], env: dict | None = None) -> subprocess.Popen:
    """Run ``args`` until the process ``owner`` ends; the watcher's pid is the returned one."""
    return subprocess.Popen([sys.executable, "-c", _WHILE_SESSION, str(owner), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@contextlib.contextmanager
def locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedJob:
    """A command run once per session, whichever worker starts it; every worker can wait for it.

    Its folder holds ``log`` (its output), ``rc`` (its exit status, once it ended) and ``pid``
    (its watcher's process id)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def start(self, owner: int, args: list[str], cwd: Path, env: dict, nice: int = 0) -> None:
        """Run ``args`` in ``cwd``; ``nice`` > 0 lets it have only the CPU the tests leave idle."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**env, "LOG": str(self.folder / "log"), "RC": str(self.folder / "rc")}
        if nice:
            # The job runs in a session of its own, and where the kernel schedules by autogroup
            # (a group per session, each with an equal share of the CPU), a process's nice
            # weighs only against its own group's: the group is niced too.
            args = ["sh", "-c", _NICE_GROUP, str(nice), *args]
        watcher = while_session(owner, ["sh", "-c", _RUN_AND_RECORD, "sh", str(cwd), *args], env)
        (self.folder / "pid").write_text(str(watcher.pid))

    def wait(self) -> tuple[int, str]:
        """Block until the job ends: (exit status, log). A job whose watcher died (killed with
        it) ends at once, with exit status -1."""
        rc, pid = self.folder / "rc", int((self.folder / "pid").read_text())
        while not rc.is_file():
            if not alive(pid):
                if rc.is_file():  # it wrote its status as it ended
                    break
                return -1, self.log()
            time.sleep(0.5)
        return int(rc.read_text()), self.log()

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.is_file() else "(no log was written)"


@dataclass
class Shared:
    """The session's shared folder: one sub-folder per job, one per built project."""

    root: Path

    def job(self, name: str) -> SharedJob:
        return SharedJob(self.root / name)

    def project(self, name: str) -> Path:
        return self.root / f"{name}-project" / "project"

    def finished(self, name: str) -> str:
        """The log of the job ``name`` once it ended well; a test failure with its log's end
        when it failed or died."""
        code, output = self.job(name).wait()
        if code != 0:
            how = "died (it was killed)" if code < 0 else f"failed (exit status {code})"
            pytest.fail(f"the shared job {name!r} {how}; the end of its log:\n{output[-6000:]}",
                        pytrace=False)
        return output
