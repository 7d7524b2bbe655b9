"""MLflow: the one place that knows run naming, tags, parent/child runs and failure tolerance.

A stage runs first and writes its outputs; then `track_stage` logs them (its params blocks,
per-epoch histories with steps, final metrics, galleries and metrics files, models). Logging never
fails a stage: when the tracking server cannot be reached, everything is written to
``mlflow-pending/`` instead, and `python -m latentlab.tracking sync` sends it later.

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else MLflow's default (SQLite ``mlflow.db`` in
the project). Runs of one pipeline execution share a parent run: the stages started by one
``dvc repro`` / ``dvc exp run`` process (found among the stage's ancestors), or by one Prefect
flow (``LATENTLAB_PIPELINE_ID``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

EXPERIMENT = os.environ.get("MLFLOW_EXPERIMENT_NAME", "latentlab")
PENDING = Path("mlflow-pending")
# Fail fast when the server is down: the stage's outputs are already safe on disk.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# MLflow's notes on every logged model in a uv project (which has no pip): not news to a user.
ROUTINE = ("Detected uv project", "Failed to resolve installed pip version")


def _not_routine(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ROUTINE)


for _name in ("mlflow.utils.uv_utils", "mlflow.utils.environment"):
    logging.getLogger(_name).addFilter(_not_routine)


@dataclass
class ModelSpec:
    path: str                         # a saved .keras file
    name: str                         # artifact name in the run
    registered_name: str | None = None


@dataclass
class Record:
    """Everything a stage logs, in a form that can wait on disk for a later sync."""

    stage: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[tuple[str, float, int | None]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)   # files or folders
    models: list[ModelSpec] = field(default_factory=list)
    pipeline_key: str | None = None


def _numbers(prefix: str, value, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _numbers(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append((prefix, float(value), None))


def pipeline_key() -> str | None:
    """Identifies one pipeline execution: a Prefect flow's id, or the `dvc` process above us."""
    if os.environ.get("LATENTLAB_PIPELINE_ID"):
        return os.environ["LATENTLAB_PIPELINE_ID"]
    import psutil

    try:
        process = psutil.Process().parent()
        while process is not None:
            if any(Path(part).name == "dvc" or part == "dvc" for part in process.cmdline()[:3]):
                return f"dvc-{process.pid}-{int(process.create_time())}"
            process = process.parent()
    except psutil.Error:
        pass
    return None


def _data_tags(stage: str, params) -> dict[str, str]:
    """Which data the run saw: the source, and (from `downsample` on) the dataset and image shape,
    so runs of different datasets are told apart when compared."""
    tags = {"latentlab.source": params.data.source}
    meta = Path("data/prepared/meta.json")
    if stage != "download" and meta.is_file():
        info = json.loads(meta.read_text())
        tags["latentlab.dataset"] = str(info.get("dataset", ""))
        tags["latentlab.image_shape"] = "×".join(map(str, info.get("image_shape", [])))
    return tags


def build_record(stage: str, params, blocks: list[str], *, metrics_files=(), histories=(),
                 artifacts=(), models=(), data_hash: str | None = None) -> Record:
    """Gather a stage's params, tags, metrics, artifacts and models from its outputs on disk."""
    import keras

    from latentlab.params import flatten_dotted
    from latentlab.provenance import git_revision

    flat: dict[str, str] = {}
    for name in blocks:
        flat.update((k, str(v)) for k, v in
                    flatten_dotted(getattr(params, name).model_dump(), name).items())
    tags = {
        "latentlab.stage": stage,
        "latentlab.git_revision": git_revision(),
        "latentlab.params_hash": params.block_hash(*blocks),
        "latentlab.keras_backend": keras.backend.backend(),
        "latentlab.dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
    }
    if data_hash:
        tags["latentlab.data_hash"] = data_hash
    tags.update(_data_tags(stage, params))
    record = Record(stage, flat, tags, pipeline_key=pipeline_key())
    metrics_files = [p for p in map(Path, metrics_files) if p.is_file()]
    for path in metrics_files:
        # Several files (evaluate: one per model) are told apart by name: gan.precision, ...
        prefix = path.stem if len(metrics_files) > 1 else ""
        _numbers(prefix, json.loads(path.read_text()), record.metrics)
        record.artifacts.append(str(path))
    for path in map(Path, histories):
        if path.is_file():
            with open(path) as f:
                for row in csv.DictReader(f):
                    step = int(row.pop("epoch"))
                    record.metrics += [(f"epoch.{k}", float(v), step) for k, v in row.items()]
            record.artifacts.append(str(path))
    record.artifacts += [str(p) for p in map(Path, artifacts) if p.exists()]
    record.models = [m for m in models if Path(m.path).is_file()]
    return record


# ---- sending --------------------------------------------------------------------------------

def _parent_run_id(client, experiment_id: str, key: str, kind: str = "pipeline",
                   parent: str | None = None) -> str:
    found = client.search_runs([experiment_id], f"tags.`latentlab.pipeline_key` = '{key}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    tags = {"latentlab.pipeline_key": key, "latentlab.kind": kind}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=f"{kind} {time.strftime('%Y-%m-%d %H:%M:%S')}",
                            tags=tags)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _experiment_id(client) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)


def open_parent(key: str, kind: str = "pipeline", parent: str | None = None) -> str | None:
    """Create the parent run of a pipeline execution (or of a sweep: ``kind="sweep"``, and its
    points with ``parent``) before its stages start, so that stages running at the same time
    share one parent. Returns its run id; None when tracking is off or MLflow cannot be reached
    (never raises: the stages then make the parent themselves, or keep their records pending)."""
    if not enabled():
        return None
    try:
        import mlflow

        client = mlflow.MlflowClient()
        return _parent_run_id(client, _experiment_id(client), key, kind, parent)
    except Exception as exc:  # noqa: BLE001 - a logging outage never stops the pipeline
        log.warning("mlflow: could not create the %s run %s (%s)", kind, key, exc)
        return None


def send(record: Record) -> str:
    """Log ``record`` as one MLflow run; returns its run id. Raises when MLflow is unreachable."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient()
    experiment_id = _experiment_id(client)
    tags = dict(record.tags)
    if record.pipeline_key:
        tags["mlflow.parentRunId"] = _parent_run_id(client, experiment_id, record.pipeline_key)
    run = client.create_run(experiment_id, run_name=record.stage, tags=tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        items = list(record.params.items())
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in items[start:start + 100]])
        metrics = [Metric(k, v, now, step or 0) for k, v, step in record.metrics]
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        client.log_batch(run_id, tags=[RunTag("latentlab.logged_at", str(now))])
        for path in map(Path, record.artifacts):
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                client.log_artifact(run_id, str(path))
        for spec in record.models:
            _log_model(run_id, spec)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


def _log_model(run_id: str, spec: ModelSpec) -> None:
    import keras
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    import latentlab.models  # noqa: F401 - registers the custom layers saved models use

    model = keras.models.load_model(spec.path)
    inputs = model.inputs
    example = [np.zeros((2, *i.shape[1:]), dtype="float32") for i in inputs]
    example_in = example[0] if len(example) == 1 else {i.name: e for i, e in zip(inputs, example)}
    outputs = model.predict(example if len(example) > 1 else example[0], verbose=0)
    if isinstance(outputs, list):
        outputs = outputs[0]
    signature = infer_signature(example_in, outputs) if len(example) == 1 else None
    with mlflow.start_run(run_id=run_id):
        mlflow.keras.log_model(model, name=spec.name, signature=signature,
                               registered_model_name=spec.registered_name,
                               pip_requirements=[f"keras=={keras.__version__}"])


def save_pending(record: Record, reason: str) -> Path:
    """Keep ``record`` (with copies of its files) under mlflow-pending/ for a later sync."""
    folder = PENDING / f"{time.strftime('%Y%m%d-%H%M%S')}-{record.stage}-{uuid.uuid4().hex[:6]}"
    files = folder / "files"
    files.mkdir(parents=True)
    copied = []
    for i, path in enumerate(map(Path, record.artifacts)):
        dest = files / f"{i}" / path.name
        dest.parent.mkdir()
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, dest)
        copied.append(str(dest))
    models = []
    for i, spec in enumerate(record.models):
        dest = files / f"model{i}" / Path(spec.path).name
        dest.parent.mkdir()
        shutil.copy2(spec.path, dest)
        models.append(ModelSpec(str(dest), spec.name, spec.registered_name))
    payload = {**record.__dict__, "artifacts": copied, "models": [m.__dict__ for m in models],
               "reason": reason}
    (folder / "record.json").write_text(json.dumps(payload, indent=1))
    return folder


def enabled() -> bool:
    """Tracking is on unless LATENTLAB_TRACKING=0 (then nothing touches MLflow, no store is made)."""
    return os.environ.get("LATENTLAB_TRACKING", "1") != "0"


def track_stage(stage: str, params, blocks: list[str], **outputs) -> str | None:
    """Log a finished stage; on any tracking failure keep it pending and say so. Never raises."""
    if not enabled():
        return None
    try:
        record = build_record(stage, params, blocks, **outputs)
    except Exception as exc:  # noqa: BLE001 - tracking must not fail the stage
        log.warning("tracking: could not gather %s's outputs for MLflow: %s", stage, exc)
        return None
    try:
        run_id = send(record)
        log.info("tracking: logged %s as MLflow run %s", stage, run_id)
        return run_id
    except Exception as exc:  # noqa: BLE001
        folder = save_pending(record, f"{type(exc).__name__}: {exc}")
        log.warning("tracking: MLflow unreachable (%s); %s's outputs are written and its run is "
                    "kept in %s: send it with `python -m latentlab.tracking sync`",
                    type(exc).__name__, stage, folder)
        return None


def sync() -> int:
    """Send every pending record; returns how many are still pending."""
    left = 0
    for folder in sorted(PENDING.glob("*/")) if PENDING.is_dir() else []:
        payload = json.loads((folder / "record.json").read_text())
        payload.pop("reason", None)
        payload["models"] = [ModelSpec(**m) for m in payload["models"]]
        payload["metrics"] = [tuple(m) for m in payload["metrics"]]
        try:
            run_id = send(Record(**payload))
        except Exception as exc:  # noqa: BLE001
            log.warning("sync: %s still pending (%s)", folder.name, exc)
            left += 1
            continue
        shutil.rmtree(folder)
        log.info("sync: sent %s as run %s", folder.name, run_id)
    return left


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if sys.argv[1:] != ["sync"]:
        sys.exit("usage: python -m latentlab.tracking sync")
    sys.exit(1 if sync() else 0)


if __name__ == "__main__":
    main()
