"""What every stage's `main()` shares: logging set-up and turning user errors into exit codes."""

from __future__ import annotations

import atexit
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable

from latentlab.errors import UserError
from latentlab.params import Params, load_params

log = logging.getLogger("latentlab")

EXIT_USER_ERROR = 2


class Terminated(BaseException):
    """SIGTERM, raised wherever the stage is, so that it unwinds as on Ctrl-C: staged outputs are
    removed (`io.staged_dir`), nothing half-written stays behind."""


def _terminate(signum, frame):
    raise Terminated()


_late_signal: int | None = None


def _remember(signum, frame):
    global _late_signal
    _late_signal = signum


def _exit_if_interrupted() -> None:
    """At exit, after the handlers registered later (TensorFlow's, MLflow's), which can take
    seconds: a Ctrl-C or SIGTERM that came once the stage's work was done would be lost there
    (Python ignores exceptions in exit handlers, and the stage would exit 0, so `dvc repro` went
    on with the next stage). It ends the process with the signal's status instead."""
    if _late_signal is not None:
        from latentlab.native_logs import drain

        log.error("interrupted while exiting")
        logging.shutdown()
        drain()
        os._exit(130 if _late_signal == signal.SIGINT else 128 + _late_signal)


def _track_failure(name: str, params: Params | None, error: str) -> None:
    """The failed stage in MLflow (a FAILED run under its pipeline's parent); never raises. Not
    for params that do not load: that stage never started, and nothing is written for it."""
    if params is None:
        return
    from latentlab.tracking import track_failure

    track_failure(name, params, error)


def use_jax_compile_cache() -> None:
    """With KERAS_BACKEND=jax, XLA's compiled programs are kept on disk and shared by every stage
    process and run (jax's persistent compilation cache): a stage does not compile again what an
    earlier one compiled, such as every layer's initialiser that loading a model runs, and the
    train and sampling steps. The folder is JAX_COMPILATION_CACHE_DIR, else `latentlab/jax`
    under XDG_CACHE_HOME (~/.cache), at most 2 GiB (least recently used entries go first);
    JAX_ENABLE_COMPILATION_CACHE=false turns it off. The programs are the ones XLA compiles:
    the outputs are the same, bit for bit."""
    import jax

    env = os.environ.get  # read here, not only at jax's import: jax may have been imported first
    base = env("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    jax.config.update("jax_compilation_cache_dir",
                      env("JAX_COMPILATION_CACHE_DIR") or os.path.join(base, "latentlab", "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs",  # jax's default: 1 s; most
                      float(env("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS") or 0))  # are less
    jax.config.update("jax_compilation_cache_max_size",
                      int(env("JAX_COMPILATION_CACHE_MAX_SIZE") or 2 << 30))


def run_stage(name: str, body: Callable[[Params], object],
              track: Callable[[Params], object] | None = None) -> None:
    """Load params and run a stage body; then ``track`` it (MLflow; it never raises).

    A UserError becomes one clear line on stderr and exit status 2.
    """
    logging.basicConfig(
        level=os.environ.get("LATENTLAB_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    signal.signal(signal.SIGTERM, _terminate)
    atexit.register(_exit_if_interrupted)
    during = ""  # what a stop interrupts: the stage's work, then its tracking
    params = None
    try:
        params = load_params()
        if os.environ.get("KERAS_BACKEND") == "jax":
            use_jax_compile_cache()
        if os.environ.get("LATENTLAB_DATA_PARALLEL", "0") == "1":  # only then import keras:
            from latentlab.training.shim import setup_data_parallel  # index, download don't

            log.info("data parallel over %d devices", setup_data_parallel())
        body(params)
        during = " while tracking; its outputs are whole"
        if track is not None:
            track(params)
    except UserError as exc:
        log.error("stage %s failed: %s", name, exc)
        _track_failure(name, params, str(exc))
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        log.error("stage %s interrupted%s", name, during)
        sys.exit(130)
    except Terminated:
        log.error("stage %s terminated (SIGTERM)%s", name, during or "; no partial output was kept")
        sys.exit(128 + signal.SIGTERM)
    except Exception as exc:
        if during:  # the work is done and tracked: not the stage's failure
            raise
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            log.error("stage %s failed: the disk is full (%s); free space there and rerun — no "
                      "partial output was kept", name, exc.filename or "writing its outputs")
            _track_failure(name, params, f"the disk is full: {exc}")
            sys.exit(EXIT_USER_ERROR)
        _track_failure(name, params, f"{type(exc).__name__}: {exc}")  # a crash of its work
        raise
    # From here the stage is done: a signal now is remembered and ends the exit with its status.
    signal.signal(signal.SIGINT, _remember)
    signal.signal(signal.SIGTERM, _remember)
