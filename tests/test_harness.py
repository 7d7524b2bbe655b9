"""The test harness's shared jobs: a job that dies fails every test waiting for it at once, with
its log, instead of leaving them to wait for pytest-timeout."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.jobs import Shared, alive

SCRIPT = "import time; print('working', flush=True); time.sleep(600)"


def _start(shared: Shared, name: str) -> tuple[int, int]:
    """Start a job that prints a line and then works for ten minutes: (watcher pid, job pid)."""
    shared.job(name).start(os.getpid(), [sys.executable, "-c", SCRIPT], shared.root, dict(os.environ))
    folder = shared.root / name
    watcher = int((folder / "pid").read_text())
    children = Path(f"/proc/{watcher}/task/{watcher}/children")
    while "working" not in shared.job(name).log() or not children.read_text().split():
        assert alive(watcher), shared.job(name).log()
        time.sleep(0.2)
    return watcher, int(children.read_text().split()[0])


def _waiters(shared: Shared, name: str, count: int = 2) -> tuple[list[threading.Thread], list]:
    """``count`` threads that wait for the job as test fixtures do, and what each got."""
    results: list = []

    def wait():
        try:
            shared.finished(name)
            results.append("passed")
        except pytest.fail.Exception as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=wait, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill", ["job", "job and watcher"])
def test_a_killed_job_fails_its_waiters_at_once_with_its_log(tmp_path, kill):
    shared = Shared(tmp_path)
    watcher, job = _start(shared, "build")
    waiters, results = _waiters(shared, "build")
    if kill == "job and watcher":
        os.kill(watcher, signal.SIGKILL)
    os.killpg(job, signal.SIGKILL)  # the job's process group: the shell and what it runs
    for thread in waiters:
        thread.join()  # they return well before the 10-minute job would have ended
    assert len(results) == 2
    for message in results:
        assert "the shared job 'build' died (it was killed)" in message
        assert "working" in message  # the end of the job's log


def test_a_job_that_ends_well_or_fails_reports_so(tmp_path):
    shared = Shared(tmp_path)
    shared.job("good").start(os.getpid(), ["sh", "-c", "echo fine"], tmp_path, dict(os.environ))
    assert shared.finished("good").strip() == "fine"
    shared.job("bad").start(os.getpid(), ["sh", "-c", "echo oops >&2; exit 3"], tmp_path,
                            dict(os.environ))
    with pytest.raises(pytest.fail.Exception, match=r"(?s)failed \(exit status 3\).*oops"):
        shared.finished("bad")


@pytest.mark.timeout(120)
def test_a_niced_job_is_niced_against_the_tests_whatever_its_session(tmp_path):
    """A job runs in a session of its own; where the kernel schedules sessions as groups
    (autogroup), the group is niced too, else the job would take as much CPU as the tests."""
    shared = Shared(tmp_path)
    code = "import os; print(os.nice(0)); print(open('/proc/self/autogroup').read())"
    shared.job("niced").start(os.getpid(), [sys.executable, "-c", code], shared.root,
                              dict(os.environ), nice=7)
    log = shared.finished("niced")
    lines = log.split("\n")
    assert lines[0] == str(os.nice(0) + 7), log
    if Path("/proc/self/autogroup").is_file():
        # The tests' own process reads nothing there when it sits in the root group.
        ours = Path("/proc/self/autogroup").read_text().split() or ["(root group)"]
        assert lines[1].endswith(" nice 7") and lines[1].split()[0] != ours[0], log
