"""Stage `downsample`: resize, square and split `data/raw/` into `data/prepared/` + a dataset card."""

from __future__ import annotations

import logging
from pathlib import Path

from latentlab.data import sources
from latentlab.data.card import write_card
from latentlab.data.downsample import downsample
from latentlab.data.prep import Spec
from latentlab.data.prepared import fingerprint
from latentlab.data.raw import write_json
from latentlab.io import staged_dir
from latentlab.params import Params, save_resolved
from latentlab.stage_runner import run_stage
from latentlab.tracking import track_stage

log = logging.getLogger(__name__)

RAW = Path("data/raw")
OUT = Path("data/prepared")
CARD = Path("reports/data")


def run(params: Params, raw_dir: Path = RAW, out_dir: Path = OUT, card_dir: Path = CARD) -> dict:
    """Prepare every split of ``raw_dir``; write arrays to ``out_dir`` and the card to ``card_dir``."""
    block = params.downsample
    raw = sources.open_raw(raw_dir)
    source = sources.source_meta(raw_dir)
    spec = Spec(block.image_size, block.channels, block.fit)
    with staged_dir(out_dir) as staging, staged_dir(card_dir) as card_staging:
        result = downsample(
            raw, staging, spec,
            val_fraction=block.val_fraction,
            test_fraction=block.test_fraction,
            seed=params.base.seed,
            on_bad_image=source["on_bad_image"],
            workers=block.workers,
            chunk_size=block.chunk_size,
        )
        meta = {
            "dataset": raw.name,
            "source": source["source"],
            "class_names": raw.class_names,
            "image_shape": [block.image_size, block.image_size, block.channels],
            "counts": result.counts,
            "skipped": {**raw.skipped, "undecodable": len(result.bad_images)},
            "undecodable_files": [name for name, _ in result.bad_images],
        }
        write_json(staging / "meta.json", meta)
        save_resolved(params, ["base", "downsample"], staging / "params.resolved.yaml")
        write_card(staging, card_staging, meta, block.grid_size, params.base.seed)
    log.info("downsample: %s", ", ".join(f"{k}={v}" for k, v in result.counts.items()))
    return meta


def main() -> None:
    run_stage("downsample", run, lambda p: track_stage(
        "downsample", p, ["base", "downsample"], artifacts=[CARD, OUT / "meta.json"],
        data_hash=fingerprint(OUT)))


if __name__ == "__main__":
    main()
