"""MLflow: the one place that knows run naming, tags, parent/child runs and failure tolerance.

A stage runs first and writes its outputs; then `track_stage` logs them (its params blocks,
per-epoch histories with steps, final metrics, galleries and metrics files, models). Logging never
fails a stage: when the tracking server cannot be reached, everything is written to
``mlflow-pending/`` instead, and `python -m latentlab.tracking sync` sends it later.

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else MLflow's default (SQLite ``mlflow.db`` in
the project). Runs of one pipeline execution share a parent run: the stages started by one
``dvc repro`` / ``dvc exp run`` process (found among the stage's ancestors), or by one Prefect
flow (``LATENTLAB_PIPELINE_ID``).

What the MLflow UI shows: the experiment opens in its model-training view; a stage run spans the
stage's process (start to the end of its work), a parent run spans its stages and is FAILED when
one failed, and its name says which data ran; the prepared splits are each training run's
dataset inputs (digest = the run's ``latentlab.data_hash``); per-epoch sample grids are images
with a step; the headline scores also go under names that read without a legend ("GAN FD").
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from latentlab.families import labels

log = logging.getLogger(__name__)

EXPERIMENT = os.environ.get("MLFLOW_EXPERIMENT_NAME", "latentlab")
# The experiment tag MLflow 3's UI reads to open an experiment in its model-training view
# (without it, the GenAI overview: traces, latency, token usage).
KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "test"}
# The scores people compare across runs, also logged under names that need no legend.
HEADLINES = [(r"labels_(\d+)\.(pretrained|scratch|probe|semi_pretrained|semi_scratch)_mean",
              "accuracy {0} labels {1}"),
             (r"val_mse", "autoencoder val MSE")]
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
    metadata: dict | None = None      # the model's card (`latentlab.models.card`), when it has one


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
    images: list[tuple[str, str, int]] = field(default_factory=list)  # (key, png file, step)
    inputs: list[dict] = field(default_factory=list)  # dataset inputs (see `_dataset_inputs`)
    started: int | None = None   # ms since the epoch: when the stage's process started
    ended: int | None = None     # when its work ended
    status: str = "FINISHED"     # FAILED: the stage failed (``track_failure``)


def _numbers(prefix: str, value, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _numbers(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append((prefix, float(value), None))


def _headline(name: str) -> str | None:
    families = labels()  # each generator family's scores: "gan.kid" -> "GAN KID"
    generators = [(rf"({'|'.join(families)})\.frechet_distance", "{0} FD"),
                  (rf"({'|'.join(families)})\.kid", "{0} KID")]
    for pattern, label in [*generators, *HEADLINES]:
        match = re.fullmatch(pattern, name)
        if match:
            return label.format(*(families.get(g, g) for g in match.groups()))
    return None


def _times() -> tuple[int | None, int]:
    """(when this process started, now), in ms: a stage's run spans its process."""
    import psutil

    try:
        started = int(psutil.Process().create_time() * 1000)
    except psutil.Error:
        started = None
    return started, int(time.time() * 1000)


def _dataset_inputs(prepared: Path, data_hash: str) -> list[dict]:
    """The prepared splits as MLflow dataset inputs: named by dataset, image shape and split, with
    the data hash the run is tagged with as digest, and their size and classes as profile."""
    from latentlab.data.prepared import read_meta

    meta = read_meta(prepared)
    name = f"{meta.get('dataset') or meta.get('source')} {'×'.join(map(str, meta['image_shape']))}"
    inputs = []
    for split, context in SPLIT_CONTEXTS.items():
        images = prepared / f"{split}_images.npy"
        if images.is_file():
            profile = {"images": meta.get("counts", {}).get(split),
                       "classes": len(meta.get("class_names") or ())}
            inputs.append({"name": f"{name} {split}", "digest": data_hash, "source_type": "local",
                           "source": json.dumps({"uri": str(images.resolve())}),
                           "profile": json.dumps(profile), "context": context})
    return inputs


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


def _script(stage: str) -> str:
    """The stage's script: train_gan runs stages/train.py, score@gan stages/score.py."""
    return "stages/train.py" if stage.startswith("train_") else f"stages/{stage.split('@')[0]}.py"


def _stage_tags(stage: str, params) -> dict[str, str]:
    """What every run of a stage carries, finished or failed: the stage, the git revision, the
    DVC experiment, MLflow's own source tags (the runs table's Source column: the stage's
    module) and which data it saw."""
    from latentlab.provenance import git_revision

    return {"latentlab.stage": stage, "latentlab.git_revision": git_revision(),
            "latentlab.dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
            "mlflow.source.type": "LOCAL", "mlflow.source.name": _script(stage),
            **_data_tags(stage, params)}


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
                 artifacts=(), models=(), data_hash: str | None = None,
                 datasets: Path | None = None, frames: dict[str, Path] | None = None,
                 named: bool = False) -> Record:
    """Gather a stage's params, tags, metrics, artifacts and models from its outputs on disk:
    ``datasets``, the prepared data the stage read (its splits become the run's inputs);
    ``frames``, per-epoch image folders (``epoch_001.png``, ...) by the key they are logged as;
    ``named``: metrics named after their file even when there is one (``gan.kid``)."""
    import keras

    from latentlab.models.card import card_of, fields
    from latentlab.params import flatten_dotted
    from latentlab.precision import chosen as chosen_precision

    if datasets is not None:
        from latentlab.data.prepared import fingerprint

        data_hash = fingerprint(datasets)

    flat: dict[str, str] = {}
    for name in blocks:
        flat.update((k, str(v)) for k, v in
                    flatten_dotted(getattr(params, name).model_dump(), name).items())
    tags = {**_stage_tags(stage, params), "latentlab.params_hash": params.block_hash(*blocks),
            "latentlab.keras_backend": keras.backend.backend()}
    choice = chosen_precision()
    if choice is not None:  # a Keras stage: the precision it computed in, and why
        tags["latentlab.precision"] = f"{choice.precision} ({choice.reason})"
    if data_hash:
        tags["latentlab.data_hash"] = data_hash
    started, ended = _times()
    record = Record(stage, flat, tags, pipeline_key=pipeline_key(), started=started, ended=ended)
    if datasets is not None:
        record.inputs = _dataset_inputs(datasets, data_hash)
    for key, folder in (frames or {}).items():
        record.images += [(key, str(png), int(png.stem.split("_")[1]))
                          for png in sorted(Path(folder).glob("epoch_*.png"))]
    metrics_files = [p for p in map(Path, metrics_files) if p.is_file()]
    for path in metrics_files:
        # Several files (evaluate: one per model) are told apart by name: anchors.kid, ...
        prefix = path.stem if len(metrics_files) > 1 or named else ""
        _numbers(prefix, json.loads(path.read_text()), record.metrics)
        record.artifacts.append(str(path))
    record.metrics += [(label, value, step) for name, value, step in list(record.metrics)
                       if (label := _headline(name))]
    for path in map(Path, histories):
        if path.is_file():
            with open(path) as f:
                for row in csv.DictReader(f):
                    step = int(row.pop("epoch"))
                    record.metrics += [(f"epoch.{k}", float(v), step) for k, v in row.items()]
            record.artifacts.append(str(path))
    record.artifacts += [str(p) for p in map(Path, artifacts) if p.exists()]
    record.models = [m for m in models if Path(m.path).is_file()]
    for spec in record.models:  # a model's card goes with it, as its MLflow metadata
        card = card_of(Path(spec.path))
        if spec.metadata is None and card is not None:
            spec.metadata = fields(card)
    return record


# ---- sending --------------------------------------------------------------------------------

def _parent_run_id(client, experiment_id: str, key: str, kind: str = "pipeline",
                   parent: str | None = None, start: int | None = None,
                   managed: bool = False, name: str | None = None) -> str:
    """The parent run of pipeline execution ``key``, made when missing: started at ``start`` (the
    first stage's start), left RUNNING for the flow that made it to close (``managed``)."""
    found = client.search_runs([experiment_id], f"tags.`latentlab.pipeline_key` = '{key}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    tags = {"latentlab.pipeline_key": key, "latentlab.kind": kind}
    if managed:
        tags["latentlab.closed_by"] = "flow"
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, start_time=start, tags=tags,
                            run_name=name or f"{kind} {time.strftime('%Y-%m-%d %H:%M:%S')}")
    return run.info.run_id


def _parent_name(kind: str, tags: dict[str, str]) -> str:
    """What ran, e.g. "pipeline fashion_mnist 28×28×1" or "pipeline folder:pokemon 64×64×3
    exp-1a2b3": the source (and dataset), the image shape, the DVC experiment."""
    source, dataset = tags.get("latentlab.source", ""), tags.get("latentlab.dataset", "")
    data = source if dataset in ("", source) else f"{source}:{dataset}"
    parts = [kind, data, tags.get("latentlab.image_shape", ""), tags.get("latentlab.dvc_experiment", "")]
    return " ".join(p for p in parts if p)


PARENT_TAGS = ("latentlab.source", "latentlab.dataset", "latentlab.image_shape",
               "latentlab.dvc_experiment")


def _update_parent(client, parent_id: str, record: Record) -> None:
    """A stage's run is logged: its parent now spans it, says what ran, and is FAILED if it
    failed. A parent a flow made stays RUNNING until the flow closes it."""
    from mlflow.entities import RunTag

    parent = client.get_run(parent_id)
    tags = {**parent.data.tags, **{k: v for k, v in record.tags.items() if k in PARENT_TAGS and v}}
    client.log_batch(parent_id, tags=[RunTag(k, tags[k]) for k in PARENT_TAGS if tags.get(k)])
    client.update_run(parent_id, name=_parent_name(tags.get("latentlab.kind", "pipeline"), tags))
    if record.inputs and not parent.inputs.dataset_inputs:  # the runs table's Dataset column
        _log_inputs(client, parent_id, record.inputs)
    failed = "FAILED" in (parent.info.status, record.status)
    if parent.info.status == "RUNNING" and tags.get("latentlab.closed_by") == "flow" and not failed:
        return
    end = max(parent.info.end_time or 0, record.ended or int(time.time() * 1000))
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED", end_time=end)


def _experiment_id(client) -> str:
    """The experiment's id (made when missing), tagged to open in MLflow's training view."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return client.create_experiment(EXPERIMENT, tags={KIND_TAG: TRAINING_KIND})
    kind = experiment.tags.get(KIND_TAG)
    if kind is None or kind.endswith("inferred") or kind == "no_inferred_type":  # not a choice
        client.set_experiment_tag(experiment.experiment_id, KIND_TAG, TRAINING_KIND)
    return experiment.experiment_id


def open_parent(key: str, kind: str = "pipeline", parent: str | None = None,
                name: str | None = None) -> str | None:
    """Create the parent run of a pipeline execution (or of a sweep: ``kind="sweep"`` and a
    ``name`` saying its grid, and its points with ``parent``) before its stages start, so that
    stages running at the same time share one parent; it runs until `close_parent`. Returns its
    run id; None when tracking is off or MLflow cannot be reached (never raises: the stages then
    make the parent themselves, or keep their records pending)."""
    if not enabled():
        return None
    try:
        import mlflow

        client = mlflow.MlflowClient()
        return _parent_run_id(client, _experiment_id(client), key, kind, parent, managed=True,
                              name=name)
    except Exception as exc:  # noqa: BLE001 - a logging outage never stops the pipeline
        log.warning("mlflow: could not create the %s run %s (%s)", kind, key, exc)
        return None


def close_parent(run_id: str | None, failed: bool = False) -> None:
    """End a parent run `open_parent` made: now, FAILED when ``failed`` or a stage failed."""
    if run_id is None or not enabled():
        return
    try:
        import mlflow

        client = mlflow.MlflowClient()
        failed = failed or client.get_run(run_id).info.status == "FAILED"
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
    except Exception as exc:  # noqa: BLE001
        log.warning("mlflow: could not close the run %s (%s)", run_id, exc)


def _log_inputs(client, run_id: str, inputs: list[dict]) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client.log_inputs(run_id, datasets=[
        DatasetInput(Dataset(d["name"], d["digest"], d["source_type"], d["source"],
                             profile=d["profile"]),
                     tags=[InputTag("mlflow.data.context", d["context"])]) for d in inputs])


def send(record: Record) -> str:
    """Log ``record`` as one MLflow run; returns its run id. Raises when MLflow is unreachable."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient()
    experiment_id = _experiment_id(client)
    tags = dict(record.tags)
    parent_id = None
    if record.pipeline_key:
        parent_id = _parent_run_id(client, experiment_id, record.pipeline_key, start=record.started)
        tags["mlflow.parentRunId"] = parent_id
    run = client.create_run(experiment_id, start_time=record.started, run_name=record.stage,
                            tags=tags)
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
        if record.inputs:
            _log_inputs(client, run_id, record.inputs)
        for key, path, step in record.images:
            from PIL import Image

            with Image.open(path) as image:
                client.log_image(run_id, image.convert("RGB"), key=key, step=step)
        for path in map(Path, record.artifacts):
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                client.log_artifact(run_id, str(path))
        for spec in record.models:
            _log_model(run_id, spec)
        client.set_terminated(run_id, record.status, end_time=record.ended)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    if parent_id:
        _update_parent(client, parent_id, record)
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
                               registered_model_name=spec.registered_name, metadata=spec.metadata,
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
        models.append(ModelSpec(str(dest), spec.name, spec.registered_name, spec.metadata))
    images = []
    for i, (key, path, step) in enumerate(record.images):
        dest = files / f"image{i}" / Path(path).name
        dest.parent.mkdir()
        shutil.copy2(path, dest)
        images.append((key, str(dest), step))
    payload = {**record.__dict__, "artifacts": copied, "models": [m.__dict__ for m in models],
               "images": images, "reason": reason}
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
    return _send_or_keep(record)


def track_failure(stage: str, params, error: str) -> str | None:
    """Log a failed stage as a FAILED run under its pipeline's parent (which is then FAILED too),
    with the error as its ``latentlab.error`` tag. Never raises."""
    if not enabled():
        return None
    try:
        tags = {**_stage_tags(stage, params), "latentlab.error": error[-5000:]}
        started, ended = _times()
        record = Record(stage, {}, tags, pipeline_key=pipeline_key(), started=started,
                        ended=ended, status="FAILED")
    except Exception as exc:  # noqa: BLE001
        log.warning("tracking: could not record %s's failure for MLflow: %s", stage, exc)
        return None
    return _send_or_keep(record)


def _send_or_keep(record: Record) -> str | None:
    stage = record.stage
    try:
        run_id = send(record)
        log.info("tracking: logged %s as MLflow run %s", stage, run_id)
        return run_id
    except Exception as exc:  # noqa: BLE001
        try:
            folder = save_pending(record, f"{type(exc).__name__}: {exc}")
        except OSError as kept:  # e.g. the disk is full
            log.warning("tracking: MLflow unreachable (%s) and %s's run could not be kept: %s",
                        type(exc).__name__, stage, kept)
            return None
        written = "" if record.status == "FAILED" else "outputs are written and its "
        log.warning("tracking: MLflow unreachable (%s); %s's %srun is kept in %s: send it with "
                    "`python -m latentlab.tracking sync`", type(exc).__name__, stage, written,
                    folder)
        return None


def sync() -> int:
    """Send every pending record; returns how many are still pending."""
    left = 0
    for folder in sorted(PENDING.glob("*/")) if PENDING.is_dir() else []:
        payload = json.loads((folder / "record.json").read_text())
        payload.pop("reason", None)
        payload["models"] = [ModelSpec(**m) for m in payload["models"]]
        payload["metrics"] = [tuple(m) for m in payload["metrics"]]
        payload["images"] = [tuple(i) for i in payload.get("images", [])]
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
