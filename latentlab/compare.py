"""Compare runs side by side: for each stage, its latest runs across pipeline executions with the
params that differ between them and the final metrics (built on `mlflow.search_runs`).

    python -m latentlab.compare [--stage finetune] [--last 5]
"""

from __future__ import annotations

import argparse
import logging
import re

import pandas as pd

from latentlab.families import FAMILIES
from latentlab.report import fmt
from latentlab.tracking import EXPERIMENT, enabled

log = logging.getLogger(__name__)


# Tags that say which data and which experiment a run belongs to, as table columns.
TAG_COLUMNS = {"tags.latentlab.dataset": "dataset", "tags.latentlab.image_shape": "image",
               "tags.latentlab.dvc_experiment": "dvc_exp"}


def generation_columns() -> list[tuple[str, str]]:
    """The generation metrics compared across runs in the report: (evaluate's metric, column
    title) of each generator family."""
    return [(f"{f.name}.{metric}", f"{f.label} {title} ↓") for f in FAMILIES.values()
            for metric, title in (("frechet_distance", "FD"), ("kid", "KID"))]


def natural(name: str) -> list:
    """Sort key: numbers in a name by value (labels_100 < labels_500 < labels_1000)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def compare(stage: str | None = None, last: int = 5) -> dict[str, pd.DataFrame]:
    """stage → a table, one row per run (newest first): dataset, image size and DVC experiment,
    the params that differ between the runs, then final metrics."""
    import mlflow

    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["start_time DESC"])
    if runs.empty or "tags.latentlab.stage" not in runs:
        return {}
    runs = runs[runs["status"] == "FINISHED"]
    tables = {}
    stages = [stage] if stage else list(dict.fromkeys(runs["tags.latentlab.stage"].dropna()))
    for name in stages:
        rows = runs[runs["tags.latentlab.stage"] == name].head(last)
        if rows.empty:
            continue
        # sorted by name: MLflow's column order changes from one search to the next
        params = sorted(c for c in rows
                        if c.startswith("params.") and rows[c].nunique(dropna=False) > 1)
        # final metrics; not the per-epoch ones, nor the headline copies for the MLflow UI
        # ("GAN FD": the only metric names with a space)
        metrics = sorted((c for c in rows if c.startswith("metrics.")
                          and not c.startswith("metrics.epoch.") and " " not in c
                          and rows[c].notna().any()), key=natural)
        tags = [c for c in TAG_COLUMNS if c in rows]
        table = rows[["run_id", "start_time", *tags, *params, *metrics]].copy()
        table["run_id"] = table["run_id"].str[:8]
        table["start_time"] = table["start_time"].dt.strftime("%Y-%m-%d %H:%M")
        table = table.rename(columns=TAG_COLUMNS).fillna({TAG_COLUMNS[c]: "" for c in tags})
        table.columns = [c.removeprefix("params.").removeprefix("metrics.") for c in table.columns]
        tables[name] = table.reset_index(drop=True)
    return tables


def cell(value) -> str:
    """A table cell of the report; "–" where a run logged nothing."""
    return "–" if pd.isna(value) else fmt(value)


def report_tables(last: int = 5) -> list[tuple[str, list[str], list[list[str]]]]:
    """The latest runs of each stage side by side, as (title, header, rows) tables for the report;
    empty when tracking is off, or MLflow has none or cannot be reached (the report never waits on
    tracking)."""
    if not enabled():
        return []
    try:
        found = compare(last=last)
    except Exception:  # noqa: BLE001
        return []
    out = []
    for family in FAMILIES.values():  # each generator's scores over its score@ stage's runs
        scored = found.get(f"score@{family.name}")
        if scored is None or len(scored) < 2:
            continue
        keys = ["run_id", "start_time", *(c for c in TAG_COLUMNS.values() if c in scored)]
        measured = [(c, title) for c, title in generation_columns() if c in scored]
        out.append((f"Generation, {family.label}: last {len(scored)} runs (FD and KID compare "
                    "only within one dataset and image size)",
                    [*keys, *(title for _, title in measured)],
                    [[cell(v) for v in row] for row in
                     scored[[*keys, *(c for c, _ in measured)]].itertuples(index=False)]))
    # One column a run (newest first) and a row per field, as MLflow's comparison view: a stage
    # can log dozens of metrics (the label-efficiency curve: 7 classifiers × 3 points × 2).
    out += [(f"{stage}: last {len(table)} runs", ["run", *table["run_id"]],
             [[str(c), *(cell(v) for v in table[c])]
              for c in table.columns if c != "run_id"])
            for stage, table in found.items() if len(table) > 1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage")
    parser.add_argument("--last", type=int, default=5)
    args = parser.parse_args()
    tables = compare(args.stage, args.last)
    if not tables:
        raise SystemExit(f"no finished runs in MLflow experiment {EXPERIMENT!r} yet; run the pipeline")
    for name, table in tables.items():
        print(f"\n## {name}\n")
        print(table.to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
