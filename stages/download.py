"""Stage `download`: fetch the dataset named by `data.source` into `data/raw/`."""

from __future__ import annotations

import logging
from pathlib import Path

from latentlab.data import sources
from latentlab.io import staged_dir
from latentlab.params import Params, save_resolved
from latentlab.stage_runner import run_stage
from latentlab.tracking import track_stage

log = logging.getLogger(__name__)

OUT = Path("data/raw")


def run(params: Params, out_dir: Path = OUT) -> dict:
    """Fetch the source into ``out_dir``, which appears only once everything is verified."""
    with staged_dir(out_dir) as staging:
        meta = sources.fetch(params.data, staging)
        save_resolved(params, ["base", "data"], staging / "params.resolved.yaml")
    log.info("download: %s ready in %s", params.data.source, out_dir)
    return meta


def main() -> None:
    run_stage("download", run, lambda p: track_stage("download", p, ["data"],
                                                 artifacts=[OUT / "source.json"]))


if __name__ == "__main__":
    main()
