"""Stage `finetune`: classifiers on small labeled subsets, pretrained encoder vs from scratch.

For every point of the label-efficiency curve (labels per class) and every seed, three models
are trained on the same nested, stratified subset and scored on the test split:

- pretrained: the autoencoder's encoder + a head; the head first (encoder frozen), then the whole
  network at a lower learning rate;
- scratch: the same network freshly initialised, same subset, same epochs and learning rates;
- probe: a logistic regression on the frozen pretrained codings.

Each finished point is appended to a checkpoint file, so an interrupted run resumes where it was.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from latentlab.cli import run_stage
from latentlab.data.downsample import fingerprint, load_split
from latentlab.data.raw import UNLABELED, read_json
from latentlab.data.splits import labeled_subset
from latentlab.errors import UserError
from latentlab.io import digest, staged_dir
from latentlab.models.classifier import build_classifier, fresh_copy, without_penalties
from latentlab.params import FinetuneBlock, Params, save_resolved
from latentlab.tracking import ModelSpec, track_stage
from latentlab.training.fit import as_float, seed_everything

log = logging.getLogger(__name__)

PREPARED = Path("data/prepared")
ENCODER = Path("models/pretrain/encoder.keras")
MODELS = Path("models/finetune")
CHECKPOINTS = Path("checkpoints/finetune")
METRICS = Path("metrics/finetune.json")
CURVE = Path("plots/finetune_curve.csv")
RUNS = Path("plots/finetune_runs.csv")
KINDS = ("pretrained", "scratch", "probe")


@dataclass
class Data:
    train_x: np.ndarray  # uint8, memory-mapped
    train_y: np.ndarray
    test_x: np.ndarray   # float
    test_y: np.ndarray
    n_classes: int


def load_data(prepared: Path) -> Data:
    meta = read_json(prepared / "meta.json")
    train_x, train_y = load_split(prepared, "train")
    test_x, test_y = load_split(prepared, "test")
    if not meta.get("class_names") or (train_y == UNLABELED).all():
        raise UserError(
            f"finetune: dataset {meta.get('dataset')!r} has no labels; use a labeled source "
            "(class sub-folders, a TFDS dataset with a ClassLabel) or run only the unsupervised "
            "stages (`dvc repro pretrain train_vae train_gan`)"
        )
    if len(test_y) == 0:
        raise UserError("finetune needs a test split: set downsample.test_fraction > 0")
    return Data(train_x, train_y, as_float(test_x), test_y, len(meta["class_names"]))


def subsets(block: FinetuneBlock, labels: np.ndarray, seed: int) -> dict[tuple[int, int], np.ndarray]:
    """Every (labels per class, seed index) subset, checked before any training (0 = all labels)."""
    labeled = np.flatnonzero(labels != UNLABELED)
    return {
        (k, s): labeled_subset(labels, k, seed + s) if k else labeled
        for k in sorted(block.labels_per_class)
        for s in range(block.seeds)
    }


def _train(model: keras.Model, x, y, epochs: int, lr: float, block: FinetuneBlock) -> None:
    repeats = -(-block.min_epoch_images // len(x))
    x, y = np.concatenate([x] * repeats), np.concatenate([y] * repeats)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=block.batch_size, verbose=0)


def _classifier(encoder: keras.Model, block: FinetuneBlock, data: Data) -> keras.Model:
    return build_classifier(encoder, data.n_classes, block.head_units, block.augment,
                            block.augment_shift)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predicted = model.predict(x, batch_size=1024, verbose=0).argmax(axis=1)
    return float((predicted == y).mean())


def train_pretrained(encoder_path: Path, block: FinetuneBlock, data: Data, x, y) -> keras.Model:
    encoder = without_penalties(keras.models.load_model(encoder_path))
    model = _classifier(encoder, block, data)
    encoder.trainable = False
    _train(model, x, y, block.head_epochs, block.learning_rate, block)
    encoder.trainable = True
    _train(model, x, y, block.finetune_epochs, block.learning_rate * block.finetune_lr_factor, block)
    return model


def train_scratch(encoder_path: Path, block: FinetuneBlock, data: Data, x, y) -> keras.Model:
    encoder = fresh_copy(without_penalties(keras.models.load_model(encoder_path)))
    model = _classifier(encoder, block, data)
    _train(model, x, y, block.head_epochs, block.learning_rate, block)
    _train(model, x, y, block.finetune_epochs, block.learning_rate * block.finetune_lr_factor, block)
    return model


def probe(encoder: keras.Model, x, y, test_codings: np.ndarray, test_y: np.ndarray, seed: int) -> float:
    codings = encoder.predict(x, batch_size=1024, verbose=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(codings, y)
    return float((clf.predict(test_codings) == test_y).mean())


def summarize(rows: list[dict], n_classes: int) -> tuple[dict, list[dict]]:
    """Mean ± std per (label count, model): the metrics dict and the plot-ready curve rows."""
    metrics, curve = {}, []
    for k in sorted({r["labels_per_class"] for r in rows}):
        point = [r for r in rows if r["labels_per_class"] == k]
        total = point[0]["labels"]
        entry = {"labels": total}
        for kind in KINDS:
            values = np.array([r[kind] for r in point])
            entry[f"{kind}_mean"] = round(float(values.mean()), 4)
            entry[f"{kind}_std"] = round(float(values.std()), 4)
        entry["gain_over_scratch"] = round(entry["pretrained_mean"] - entry["scratch_mean"], 4)
        metrics[f"labels_{total}"] = entry
        curve.append({"labels": total, **{kind: entry[f"{kind}_mean"] for kind in KINDS},
                      **{f"{kind}_std": entry[f"{kind}_std"] for kind in KINDS}})
    return metrics, curve


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _load_done(checkpoints: Path, key: str) -> list[dict]:
    path = checkpoints / "results.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if any(r.get("key") != key for r in rows):
        path.unlink()
        return []
    return rows


def run(params: Params, prepared: Path = PREPARED, encoder_path: Path = ENCODER,
        models_dir: Path = MODELS, checkpoints: Path = CHECKPOINTS, metrics_path: Path = METRICS,
        curve_path: Path = CURVE, runs_path: Path = RUNS) -> dict:
    block, seed = params.finetune, params.base.seed
    data = load_data(prepared)
    plan = subsets(block, data.train_y, seed)  # raises on impossible label counts, before training
    if not encoder_path.is_file():
        raise UserError(f"{encoder_path}: no pretrained encoder; run `dvc repro pretrain` first")
    key = "-".join([params.block_hash("base", "finetune"), fingerprint(prepared),
                    digest(encoder_path)])
    checkpoints.mkdir(parents=True, exist_ok=True)
    rows = _load_done(checkpoints, key)
    done = {(r["labels_per_class"], r["seed"]) for r in rows}

    pretrained_encoder = keras.models.load_model(encoder_path)
    test_codings = pretrained_encoder.predict(data.test_x, batch_size=1024, verbose=0)
    keeper = max(plan, key=lambda ks: (ks[0] == 0, ks[0], -ks[1]))  # most labels, first seed
    kept_model = None
    for (k, s), index in plan.items():
        if (k, s) in done and (k, s) != keeper:
            continue
        x, y = as_float(data.train_x[index]), data.train_y[index]
        seed_everything(seed + s)
        pretrained = train_pretrained(encoder_path, block, data, x, y)
        if (k, s) == keeper:
            kept_model = pretrained
        if (k, s) in done:
            continue
        seed_everything(seed + s)
        scratch = train_scratch(encoder_path, block, data, x, y)
        row = {
            "labels_per_class": k, "seed": s, "labels": len(index),
            "pretrained": accuracy(pretrained, data.test_x, data.test_y),
            "scratch": accuracy(scratch, data.test_x, data.test_y),
            "probe": probe(pretrained_encoder, x, y, test_codings, data.test_y, seed + s),
        }
        log.info("%5d labels, seed %d: pretrained %.3f  scratch %.3f  probe %.3f",
                 len(index), s, row["pretrained"], row["scratch"], row["probe"])
        rows.append(row)
        with open(checkpoints / "results.jsonl", "a") as f:
            f.write(json.dumps({**row, "key": key}) + "\n")

    rows = [{k: v for k, v in r.items() if k != "key"} for r in rows]
    rows.sort(key=lambda r: (r["labels"], r["seed"]))
    metrics, curve = summarize(rows, data.n_classes)
    with staged_dir(models_dir) as staging:
        kept_model.save(staging / "classifier.keras")
        save_resolved(params, ["base", "finetune"], staging / "params.resolved.yaml")
    _write_csv(runs_path, rows)
    _write_csv(curve_path, curve)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    for name, entry in metrics.items():
        log.info("%s: pretrained %.3f±%.3f  scratch %.3f±%.3f  probe %.3f±%.3f", name,
                 *(entry[f"{kind}_{stat}"] for kind in KINDS for stat in ("mean", "std")))
    return metrics


def main() -> None:
    run_stage("finetune", run, lambda p: track_stage(
        "finetune", p, ["base", "finetune"], metrics_files=[METRICS], artifacts=[CURVE, RUNS],
        models=[ModelSpec(str(MODELS / "classifier.keras"), "classifier", "latentlab-classifier")],
        data_hash=fingerprint(PREPARED)))


if __name__ == "__main__":
    main()
