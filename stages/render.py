"""Stage `render`: galleries (PNG, GIF) and the report (`reports/index.html`, `summary.md`);
the galleries are drawn by `latentlab.model_galleries`, the page by `latentlab.report`."""

from __future__ import annotations

import logging
from pathlib import Path

from latentlab import model_galleries as mg
from latentlab.compare import report_tables
from latentlab.data.prepared import as_float, is_labeled, load_split, read_meta
from latentlab.families import FAMILIES, selected
from latentlab.io import staged_dir
from latentlab.params import Params
from latentlab.precision import configure
from latentlab.provenance import git_revision
from latentlab.report import read_metrics, write_report
from latentlab.seeding import seed_everything
from latentlab.stage_runner import run_stage
from latentlab.tracking import track_stage

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
MODELS = Path("models")
METRICS = Path("metrics")
PLOTS = Path("plots")
REPORTS = Path("reports")


def run(params: Params, prepared: Path = PREPARED, models: Path = MODELS, metrics: Path = METRICS,
        plots: Path = PLOTS, reports: Path = REPORTS) -> list:
    block, seed = params.render, params.base.seed
    seed_everything(seed)
    configure(params.base.precision)
    meta = read_meta(prepared)
    test, labels = mg.shuffled_sample(prepared, "test", max(block.map_points, 2 * block.grid_size),
                                      seed)
    train = as_float(load_split(prepared, "train")[0])
    galleries = [(f"data/{split}_samples.png", f"Dataset: {split} split samples")
                 for split in ("train", "val", "test") if (reports / f"data/{split}_samples.png").is_file()]
    with staged_dir(reports / "galleries") as out:
        galleries += mg.autoencoder_galleries(out, block, test, labels, models,
                                              params.evaluate.noise_std,
                                              meta["class_names"] if is_labeled(meta) else None,
                                              seed)
        context = mg.Context(test, train, models, reports, metrics, seed)
        for family in selected(params.generators):
            galleries += family.module("galleries").galleries(out, block, context)
        galleries += mg.curve_galleries(out, plots, selected(params.generators))
    params_text = Path("params.yaml").read_text() if Path("params.yaml").is_file() else ""
    left_out = set(FAMILIES) - set(params.generators)  # metrics an earlier run may have left
    found = {k: v for k, v in read_metrics(metrics).items()
             if k.removeprefix("evaluate/") not in left_out}
    write_report(reports, meta, git_revision(), found,
                 galleries, params_text, report_tables())
    log.info("render: %d galleries, report at %s", len(galleries), reports / "index.html")
    return galleries


def main() -> None:
    run_stage("render", run, lambda p: track_stage(
        "render", p, ["base", "render"],
        artifacts=[REPORTS / "galleries", REPORTS / "index.html", REPORTS / "summary.md"]))


if __name__ == "__main__":
    main()
