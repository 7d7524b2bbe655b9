"""Compare runs side by side: for each stage, its latest runs across pipeline executions with the
params that differ between them and the final metrics (built on `mlflow.search_runs`).

    python -m latentlab.compare [--stage finetune] [--last 5]
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from latentlab.report import fmt
from latentlab.tracking import EXPERIMENT, enabled

log = logging.getLogger(__name__)


def compare(stage: str | None = None, last: int = 5) -> dict[str, pd.DataFrame]:
    """stage → a table, one row per run (newest first): differing params, then final metrics."""
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
        params = [c for c in rows if c.startswith("params.") and rows[c].nunique(dropna=False) > 1]
        metrics = [c for c in rows if c.startswith("metrics.") and not c.startswith("metrics.epoch.")
                   and rows[c].notna().any()]
        table = rows[["run_id", "start_time", *params, *metrics]].copy()
        table["run_id"] = table["run_id"].str[:8]
        table["start_time"] = table["start_time"].dt.strftime("%Y-%m-%d %H:%M")
        table.columns = [c.removeprefix("params.").removeprefix("metrics.") for c in table.columns]
        tables[name] = table.reset_index(drop=True)
    return tables


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
    return [(f"{stage}: last {len(table)} runs", [str(c) for c in table.columns],
             [[fmt(v) for v in row] for row in table.itertuples(index=False)])
            for stage, table in found.items() if len(table) > 1]


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
