"""Keep native libraries' routine log lines out of a stage's output.

TensorFlow and XLA log from C++ through absl, mostly before absl's logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach those lines: "Could not find cuda drivers", "failed call
to cuInit", oneDNN and CPU-feature notes, tf.data attribute mismatches, a dozen per stage. A stage
process passes its stderr file descriptor through a filter thread that drops absl-format INFO,
WARNING and ERROR lines; everything else (Python logging, tracebacks, fatal native lines) passes
unchanged and in order. ``LATENTLAB_NATIVE_LOGS=1`` keeps every line.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl's format: severity, MMDD, time, thread id, file:line] message.
ABSL_LINE = re.compile(rb"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.+-]+:\d+\] ")
NOTICES = (  # lines that belong to dropped records, or announce them
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",
)


def is_native_noise(line: bytes) -> bool:
    return bool(ABSL_LINE.match(line)) or line.startswith(NOTICES)


def _pump(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as source:
        pending = b""
        while chunk := source.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
            if kept:
                os.write(write_fd, kept)
        if pending and not is_native_noise(pending):
            os.write(write_fd, pending)


def filter_native_logs() -> None:
    """From now until exit, this process's stderr (fd 2) goes through the filter."""
    if os.environ.get("LATENTLAB_NATIVE_LOGS") == "1":
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, original), daemon=True,
                            name="native-log-filter")
    pump.start()

    def restore() -> None:  # at exit: the filter drains what is written, then fd 2 is the original
        global _restore
        if _restore is None:
            return
        _restore = None
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end here: the pump sees the end
        pump.join(timeout=5)

    global _restore
    _restore = restore
    atexit.register(restore)


_restore = None


def drain() -> None:
    """Pass what the filter holds on to stderr and stop filtering (before an ``os._exit``)."""
    if _restore is not None:
        _restore()
