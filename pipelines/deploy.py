"""The scheduled deployment of the pipeline: nightly, on a process work pool.

    prefect server start                                  # a Prefect server (or use Prefect Cloud)
    prefect work-pool create latentlab --type process
    python -m pipelines.deploy                            # registers 'latentlab-pipeline/nightly'
    prefect worker start --pool latentlab                 # runs what the schedule starts

The scheduled runs send their stages to a LocalCluster on the worker's machine, or with
`--dask-address tcp://scheduler:8786` to an existing Dask cluster. `python -m pipelines.deploy
--serve` instead serves the same schedule from this process, with no work pool or worker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from prefect.deployments.runner import EntrypointType

from pipelines.flow import pipeline

ROOT = Path(__file__).resolve().parents[1]
NAME = "nightly"
CRON = "0 2 * * *"


def deploy(work_pool: str = "latentlab", cron: str = CRON, project: Path = ROOT,
           dask_address: str | None = None) -> str:
    """Register the deployment; returns its id.

    The entrypoint is the module path, not the file: a worker then imports the flow as
    `pipelines.flow`, the name a remote Dask worker unpickles its tasks by (loaded from the file,
    it would be a module `flow` that no Dask worker can import).
    """
    source = pipeline.from_source(source=str(project), entrypoint="pipelines.flow.pipeline")
    env = {"LATENTLAB_DASK_ADDRESS": dask_address} if dask_address else {}
    return str(source.deploy(name=NAME, work_pool_name=work_pool, cron=cron,
                             parameters={"project": str(project)}, job_variables={"env": env},
                             build=False, push=False, print_next_steps=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="latentlab")
    parser.add_argument("--cron", default=CRON)
    parser.add_argument("--dask-address", default=None, metavar="tcp://HOST:PORT",
                        help="run the stages on this Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.serve:
        # runs start in subprocesses that import the flow by module path and read the address
        if args.dask_address:
            os.environ["LATENTLAB_DASK_ADDRESS"] = args.dask_address
        pipeline.serve(name=NAME, cron=args.cron, parameters={"project": str(ROOT)},
                       entrypoint_type=EntrypointType.MODULE_PATH)
    else:
        print(deploy(args.pool, args.cron, dask_address=args.dask_address))


if __name__ == "__main__":
    main()
