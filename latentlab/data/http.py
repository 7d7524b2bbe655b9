"""HTTP downloads with retries, exponential backoff and an integrity check before a file lands."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from latentlab.errors import UserError

log = logging.getLogger(__name__)


class TransientDownloadError(Exception):
    """A failure worth retrying: connection trouble, a 5xx answer, a truncated or garbled body."""


class MirrorError(Exception):
    """A failure not worth retrying at this mirror (a 4xx answer): try the next one."""


def _fetch_once(url: str, dest: Path, check: Callable[[Path], str | None], timeout: float,
                deadline: float) -> None:
    started = time.monotonic()
    try:
        response = requests.get(url, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise TransientDownloadError(f"{url}: {exc}") from exc
    with response:
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientDownloadError(f"{url}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise MirrorError(f"{url}: HTTP {response.status_code}")
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                # read1 returns what one socket read brings (each bounded by ``timeout``), so a
                # server that trickles bytes meets the deadline instead of holding it forever.
                while block := response.raw.read1(1 << 16, decode_content=True):
                    out.write(block)
                    if time.monotonic() - started > deadline:
                        raise TransientDownloadError(
                            f"{url}: not finished after {deadline:g} s ({out.tell()} bytes so far); "
                            "the server sends too slowly"
                        )
            # A garbled or cut-short body is retried like a dropped connection.
            problem = check(Path(tmp_name))
            if problem:
                raise TransientDownloadError(f"{url}: {problem}")
            os.replace(tmp_name, dest)
        except requests.RequestException as exc:
            raise TransientDownloadError(f"{url}: {exc}") from exc
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)


def download(
    urls: list[str],
    dest: Path,
    check: Callable[[Path], str | None],
    retries: int = 4,
    timeout: float = 60.0,
    backoff: float = 1.0,
    deadline: float = 900.0,
) -> None:
    """Fetch ``dest`` from the first mirror that serves good bytes.

    ``check(path)`` returns None for a good file, else what is wrong with it. Each mirror gets
    ``retries`` extra attempts with exponential backoff; the file appears at ``dest`` only once
    it passes the check, so a failed download leaves nothing behind. ``timeout`` bounds each
    connect and each read; ``deadline`` bounds a whole attempt at the file.
    """
    failures = []
    for url in urls:
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(TransientDownloadError),
                stop=stop_after_attempt(retries + 1),
                wait=wait_exponential(multiplier=backoff, max=30),
                reraise=False,
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        log.warning("retrying %s (attempt %d)", url, attempt.retry_state.attempt_number)
                    _fetch_once(url, dest, check, timeout, deadline)
            return
        except RetryError as exc:
            failures.append(str(exc.last_attempt.exception()))
        except MirrorError as exc:
            failures.append(str(exc))
    raise UserError(
        f"could not download {dest.name}: " + "; ".join(failures)
        + ". Check the network, or put a verified copy of the file in a local directory."
    )
