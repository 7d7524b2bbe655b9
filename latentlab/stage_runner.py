"""What every stage's `main()` shares: logging set-up and turning user errors into exit codes."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable

from latentlab.errors import UserError
from latentlab.params import Params, load_params

log = logging.getLogger("latentlab")

EXIT_USER_ERROR = 2


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
    try:
        params = load_params()
        if os.environ.get("LATENTLAB_DATA_PARALLEL", "0") == "1":  # only then import keras:
            from latentlab.training.shim import setup_data_parallel  # index, download don't

            log.info("data parallel over %d devices", setup_data_parallel())
        body(params)
    except UserError as exc:
        log.error("stage %s failed: %s", name, exc)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        log.error("stage %s interrupted", name)
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        log.error("stage %s failed: the disk is full (%s); free space there and rerun — no "
                  "partial output was kept", name, exc.filename or "writing its outputs")
        sys.exit(EXIT_USER_ERROR)
    if track is not None:
        track(params)
