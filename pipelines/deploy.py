"""The scheduled deployment of the pipeline: nightly, on a process work pool.

    prefect server start                                  # a Prefect server (or use Prefect Cloud)
    prefect work-pool create latentlab --type process
    python -m pipelines.deploy                            # registers 'latentlab-pipeline/nightly'
    prefect worker start --pool latentlab                 # runs what the schedule starts

`python -m pipelines.deploy --serve` instead serves the same schedule from this process, with no
work pool or worker.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.flow import pipeline

ROOT = Path(__file__).resolve().parents[1]
NAME = "nightly"
CRON = "0 2 * * *"


def deploy(work_pool: str = "latentlab", cron: str = CRON, project: Path = ROOT) -> str:
    """Register the deployment; returns its id."""
    source = pipeline.from_source(source=str(project), entrypoint="pipelines/flow.py:pipeline")
    return str(source.deploy(name=NAME, work_pool_name=work_pool, cron=cron,
                             parameters={"project": str(project)}, build=False, push=False,
                             print_next_steps=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="latentlab")
    parser.add_argument("--cron", default=CRON)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.serve:
        pipeline.serve(name=NAME, cron=args.cron, parameters={"project": str(ROOT)})
    else:
        print(deploy(args.pool, args.cron))


if __name__ == "__main__":
    main()
