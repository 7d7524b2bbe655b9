"""What every stage's `main()` shares: logging set-up and turning user errors into exit codes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from latentlab.errors import UserError

log = logging.getLogger("latentlab")

EXIT_USER_ERROR = 2


def run_stage(name: str, body: Callable[[], object]) -> None:
    """Run a stage body; a UserError becomes one clear line on stderr and exit status 2."""
    logging.basicConfig(
        level=os.environ.get("LATENTLAB_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        body()
    except UserError as exc:
        log.error("stage %s failed: %s", name, exc)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        log.error("stage %s interrupted", name)
        sys.exit(130)
