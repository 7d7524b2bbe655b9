"""Stage `index`: list `data.local_dir` into `data/local_dir.json`, the listing `download` depends on.

It runs on every `dvc repro` (a stat of each file, no reads); when the listing is unchanged DVC
skips `download` and everything after it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from latentlab.data.local_dir import write_index
from latentlab.params import Params
from latentlab.stage_runner import run_stage

log = logging.getLogger(__name__)

OUT = Path("data/local_dir.json")


def run(params: Params, out: Path = OUT) -> dict:
    listing = write_index(Path(params.data.local_dir), out, params.data.on_bad_image)
    log.info("index: %d files in %s", len(listing["files"]), listing["root"])
    return listing


def main() -> None:
    run_stage("index", run)


if __name__ == "__main__":
    main()
