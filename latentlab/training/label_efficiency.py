"""The label-efficiency protocol: what a pretrained encoder buys a classifier that has few labels.

For every point of the curve (labels per class) and every seed, three models are trained on the
same nested, stratified subset and scored on the test split:

- pretrained: the autoencoder's encoder + a head; the head first (encoder frozen), then the whole
  network at a lower learning rate;
- scratch: the same network freshly initialised, same subset, same epochs and learning rates;
- probe: a logistic regression on the frozen pretrained codings;
- with ``semi_supervised`` set, semi pretrained and semi scratch: each of the two supervised
  models above, with the unlabeled train images, whose labels it never reads:
  ``fixmatch`` trains a copy further on the subset and those images (`semi_supervised.py`, at the
  fine-tune's learning rate); ``poisson`` carries the subset's labels over a graph of the
  model's codings of those images and averages that with the model (`graph.py`).

Beside them, what needs no network at all, on the same subsets: the baselines every number above
has to beat, a logistic regression and a k-nearest-neighbours classifier (4 neighbours weighted by
distance, the pair Géron's chapter 3 found best on MNIST) on the raw pixels.

Each classifier (a pretrained or a scratch one, and what is scored from it) is seeded on its own
and trained on one thread, in a pool of processes (`workers`): the same numbers in whichever
process it runs. Each finished point is recorded in a checkpoint, so an interrupted run resumes
where it was.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from latentlab.data.prepared import UNLABELED, as_float, is_labeled, load_split, read_meta
from latentlab.data.splits import labeled_subset
from latentlab.errors import UserError
from latentlab.models.classifier import build_classifier, fresh_copy, without_penalties
from latentlab.params import FinetuneBlock
from latentlab.precision import load_model
from latentlab.seeding import seed_everything
from latentlab.training.checkpoint import Checkpoint
from latentlab.training.graph import poisson_probabilities
from latentlab.training.semi_supervised import fixmatch

# Why `base.precision: auto` fine-tunes in float32 (benchmarks/README.md, "Precision").
FLOAT32_BECAUSE = "the fine-tune's steps (batch 32) gain nothing in bfloat16 on a CPU (1.0×)"

log = logging.getLogger(__name__)

KINDS = ("pretrained", "scratch", "probe", "pixel_logreg", "pixel_knn")
SEMI_KINDS = ("semi_pretrained", "semi_scratch")
BASELINES = ("pixel_logreg", "pixel_knn")
PROCESSES = "LATENTLAB_PROCESSES"  # how many processes the curve may train in at once


@dataclass
class Data:
    train_x: np.ndarray  # uint8, memory-mapped
    train_y: np.ndarray
    test_x: np.ndarray   # float
    test_y: np.ndarray
    n_classes: int


def kinds(block: FinetuneBlock) -> tuple[str, ...]:
    """The classifiers each point of the curve trains and scores."""
    return KINDS + (SEMI_KINDS if block.semi_supervised != "none" else ())


def curve_columns(block: FinetuneBlock) -> list[str]:
    return ["labels", *kinds(block), *(f"{kind}_std" for kind in kinds(block))]


def run_columns(block: FinetuneBlock) -> list[str]:
    return ["labels_per_class", "seed", "labels", *kinds(block)]


def not_applicable(prepared: Path) -> str | None:
    """Why the curve does not apply to this dataset (no labels, or one class), or None."""
    meta = read_meta(prepared)
    _, train_y = load_split(prepared, "train")
    names = meta.get("class_names") or []
    if len(names) == 1:
        return (f"dataset {meta.get('dataset')!r} has a single class ({names[0]!r}), so there is "
                "nothing to classify; the autoencoder, VAE and GAN stages still apply")
    if not names or (train_y == UNLABELED).all():
        return (f"dataset {meta.get('dataset')!r} has no labels, so there is no classifier to "
                "fine-tune; the autoencoder, VAE and GAN stages still apply")
    return None


def load_data(prepared: Path) -> Data:
    """The labeled train and test splits."""
    meta = read_meta(prepared)
    train_x, train_y = load_split(prepared, "train")
    test_x, test_y = load_split(prepared, "test")
    if len(test_y) == 0 or not is_labeled(meta, test_y):
        raise UserError("finetune needs a labeled test split: set downsample.test_fraction > 0")
    return Data(train_x, train_y, as_float(test_x), test_y, len(meta["class_names"]))


def subsets(block: FinetuneBlock, labels: np.ndarray, seed: int) -> dict[tuple[int, int], np.ndarray]:
    """Every (labels per class, seed index) subset, checked before any training. 0 = every label:
    one subset whatever the seed, so it is trained once (seed index 0)."""
    labeled = np.flatnonzero(labels != UNLABELED)
    return {
        (k, s): labeled_subset(labels, k, seed + s) if k else labeled
        for k in sorted(block.labels_per_class)
        for s in range(block.seeds if k else 1)
    }


# Steps per call of TensorFlow's compiled train function: a fine-tune's steps are small (batch
# 32), and Keras spent 15-20 % of an epoch between them; the same numbers bit for bit.
STEPS_PER_EXECUTION = 8

# This process's compiled classifiers on TensorFlow, by architecture and frozen encoder (`_fit`).
_COMPILED: dict[tuple[str, bool], keras.Model] = {}


def _encoder_of(model: keras.Model) -> keras.Model:
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def _compiled(model: keras.Model, frozen: bool, lr: float) -> keras.Model:
    """``model``, its encoder ``frozen`` or not, compiled with a fresh Adam at ``lr``.

    On TensorFlow that is this process's compiled copy of its architecture, its variables (and
    random layers' seeds) set from ``model`` and its optimizer reset: the same numbers as
    compiling ``model`` itself, without tracing a new train function for each classifier of the
    curve (two seconds a fit). On jax a first fit also draws one more shuffle of the data than a
    fit of a compiled model does, so a reused copy would train on another order: ``model`` is
    compiled itself."""
    if keras.backend.backend() != "tensorflow":
        _encoder_of(model).trainable = not frozen
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        return model
    key = (json.dumps(model.get_config(), sort_keys=True, default=str), frozen)
    if key not in _COMPILED:
        copy = keras.models.clone_model(model)
        _encoder_of(copy).trainable = not frozen
        copy.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                     steps_per_execution=STEPS_PER_EXECUTION)
        _COMPILED[key] = copy
    copy = _COMPILED[key]
    for source, target in zip(model.variables, copy.variables, strict=True):
        target.assign(source)
    for variable in copy.optimizer.variables:
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    copy.optimizer.learning_rate = lr
    return copy


def _fit(model: keras.Model, x, y, epochs: int, lr: float, block: FinetuneBlock,
         frozen: bool) -> keras.Model:
    """``model`` trained (its encoder ``frozen`` or not) with a fresh Adam at ``lr``, small subsets
    repeated up to ``block.min_epoch_images`` images an epoch. Returns the trained network: on
    TensorFlow the process's compiled copy (`_compiled`), which holds this classifier until the
    process trains the next one."""
    repeats = -(-block.min_epoch_images // len(x))
    x, y = np.concatenate([x] * repeats), np.concatenate([y] * repeats)
    model = _compiled(model, frozen, lr)
    model.fit(x, y, epochs=epochs, batch_size=block.batch_size, verbose=0)
    return model


def _classifier(encoder: keras.Model, block: FinetuneBlock, n_classes: int) -> keras.Model:
    return build_classifier(encoder, n_classes, block.head_units, block.augment,
                            block.augment_shift)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predicted = model.predict(x, batch_size=1024, verbose=0).argmax(axis=1)
    return float((predicted == y).mean())


def train_pretrained(encoder_path: Path, block: FinetuneBlock, n_classes: int, x, y) -> keras.Model:
    """The pretrained encoder and a head: the head first (encoder frozen), then the whole network
    at the lower learning rate."""
    model = _classifier(without_penalties(load_model(encoder_path)), block, n_classes)
    model = _fit(model, x, y, block.head_epochs, block.learning_rate, block, frozen=True)
    return _fit(model, x, y, block.finetune_epochs,
                block.learning_rate * block.finetune_lr_factor, block, frozen=False)


def train_scratch(encoder_path: Path, block: FinetuneBlock, n_classes: int, x, y) -> keras.Model:
    """The same network freshly initialised, the same epochs and learning rates, nothing frozen."""
    encoder = fresh_copy(without_penalties(load_model(encoder_path)))
    model = _classifier(encoder, block, n_classes)
    model = _fit(model, x, y, block.head_epochs, block.learning_rate, block, frozen=False)
    return _fit(model, x, y, block.finetune_epochs,
                block.learning_rate * block.finetune_lr_factor, block, frozen=False)


def train_semi(start: keras.Model, block: FinetuneBlock, data: Data, index: np.ndarray,
               seed: int) -> keras.Model:
    """FixMatch's semi-supervised classifier: a copy of ``start``, the supervised classifier of
    the subset ``index``, trained further on it and every train image as an unlabeled one.
    Starting from the supervised model, the pseudo-labels are as good as it is from the first
    step, and the fine-tune's learning rate keeps what pretraining gave the encoder."""
    model = keras.models.clone_model(start)
    model.set_weights(start.get_weights())
    seed_everything(seed)
    return fixmatch(model, as_float(data.train_x[index]), data.train_y[index], data.train_x,
                    block, block.learning_rate * block.finetune_lr_factor, seed)


def poisson_semi(start: keras.Model, block: FinetuneBlock, data: Data, index: np.ndarray,
                 seed: int) -> np.ndarray:
    """Poisson learning's class probabilities for the test split: ``start`` (left as it is) and
    the labels of ``index`` carried over the graph of its codings of ``semi_graph_images``
    other train images, drawn with ``seed``. With every train image labeled there is nothing to
    carry the labels to: the network's own probabilities."""
    others = np.setdiff1d(np.arange(len(data.train_y)), index)
    if not len(others):
        return start.predict(data.test_x, batch_size=1024, verbose=0)
    if block.semi_graph_images and block.semi_graph_images < len(others):
        others = np.sort(np.random.default_rng(seed).choice(others, block.semi_graph_images,
                                                            replace=False))
    return poisson_probabilities(start, as_float(data.train_x[index]), data.train_y[index],
                                 data.train_x[others], data.test_x, data.n_classes,
                                 block.semi_neighbours, seed)


def semi_accuracy(start: keras.Model, block: FinetuneBlock, data: Data, index: np.ndarray,
                  seed: int) -> float:
    """Test accuracy of the semi-supervised classifier made from ``start`` (semi pretrained from
    the pretrained one, semi scratch from scratch) and the unlabeled train images; of
    ``data.train_y`` it reads ``index`` alone."""
    if block.semi_supervised == "poisson":
        predicted = poisson_semi(start, block, data, index, seed).argmax(axis=1)
        return float((predicted == data.test_y).mean())
    return accuracy(train_semi(start, block, data, index, seed), data.test_x, data.test_y)


def probe(encoder: keras.Model, x, y, test_codings: np.ndarray, test_y: np.ndarray, seed: int) -> float:
    codings = encoder.predict(x, batch_size=1024, verbose=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(codings, y)
    return float((clf.predict(test_codings) == test_y).mean())


def pixel_baselines(x: np.ndarray, y: np.ndarray, data: Data, seed: int) -> dict[str, float]:
    """Test accuracy of a logistic regression and of k-NN on the raw pixels of one subset."""
    flat_test = data.test_x.reshape(len(data.test_x), -1)
    flat = x.reshape(len(x), -1)
    models = {"pixel_logreg": LogisticRegression(max_iter=2000, tol=1e-3, random_state=seed),
              "pixel_knn": KNeighborsClassifier(min(4, len(flat)), weights="distance")}
    return {name: float((clf.fit(flat, y).predict(flat_test) == data.test_y).mean())
            for name, clf in models.items()}


def workers(points: int) -> int:
    """How many processes train the curve's points at once: one per CPU core this process may
    use, or ``LATENTLAB_PROCESSES`` if set (at most one per point), on TensorFlow's CPU, each
    computing on one thread; one on jax or a GPU. A fine-tune's small steps keep 1.2 of 2 cores
    busy on two threads and run as fast on one (benchmarks/README.md, "Precision")."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return 1
    setting = os.environ.get(PROCESSES, "").strip()
    if not setting:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)  # the cores this process may use (Linux), or all
        return max(1, min(points, cores))
    if not setting.isdigit() or int(setting) < 1:
        raise UserError(f"{PROCESSES}={setting!r}: give a whole number of processes, 1 or more "
                        f"(or unset it: one per CPU core)")
    return max(1, min(points, int(setting)))


def one_thread() -> None:
    """Compute on one thread in this process (TensorFlow's op pools, BLAS and OpenMP): a point
    then gives the same numbers in whichever process and beside however many others it runs.
    TensorFlow's pools can be set before its first op only; in a process that has run one (a
    test), they stay as they are."""
    threadpool_limits(1)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass


@functools.cache
def _inputs(prepared: Path, encoder_path: Path,
            key: str) -> tuple[Data, keras.Model, np.ndarray]:
    """The data, the pretrained encoder and its codings of the test images, once per process
    and ``key`` (the checkpoint's: it names the data and the encoder)."""
    data = load_data(prepared)
    encoder = load_model(encoder_path)
    return data, encoder, encoder.predict(data.test_x, batch_size=1024, verbose=0)


def train_and_score(block: FinetuneBlock, prepared: Path, encoder_path: Path, key: str,
                    policy: str, k: int, s: int, index: np.ndarray, seed: int, model: str,
                    score: bool, keep: Path | None) -> tuple[int, int, dict]:
    """One half of a point's row (``k`` labels per class, seed index ``s``, the subset
    ``index``): the test accuracies of the ``model`` ("pretrained" or "scratch") classifier and
    its semi-supervised one, and with the pretrained one the probe's and the pixel baselines'
    (``score``); the pretrained classifier is saved to ``keep`` if given. Seeded by ``seed``
    alone, so it runs in any process, in any order."""
    one_thread()
    keras.config.set_dtype_policy(policy)
    data, pretrained_encoder, test_codings = _inputs(prepared, encoder_path, key)
    x, y = as_float(data.train_x[index]), data.train_y[index]
    seed_everything(seed)
    train = train_pretrained if model == "pretrained" else train_scratch
    classifier = train(encoder_path, block, data.n_classes, x, y)
    if keep is not None:
        classifier.save(keep)
    if not score:
        return k, s, {}
    row = {model: accuracy(classifier, data.test_x, data.test_y)}
    if block.semi_supervised != "none":
        row[f"semi_{model}"] = semi_accuracy(classifier, block, data, index, seed)
    if model == "pretrained":
        row["probe"] = probe(pretrained_encoder, x, y, test_codings, data.test_y, seed)
        row.update(pixel_baselines(x, y, data, seed))
    return k, s, row


def curve(block: FinetuneBlock, prepared: Path, encoder_path: Path, checkpoint: Checkpoint,
          seed: int, keep: Path, processes: int | None = None) -> list[dict]:
    """Train and score every point, ``processes`` at a time (default `workers`); returns one
    row per (point, seed), sorted, and saves to ``keep`` the pretrained classifier of the point
    with the most labels (first seed), the one a stage keeps. Each finished point is saved to
    ``checkpoint`` as it comes in."""
    data = load_data(prepared)
    plan = subsets(block, data.train_y, seed)  # raises on impossible label counts, before training
    rows = (checkpoint.load() or {"rows": []})["rows"]
    done = {(r["labels_per_class"], r["seed"]) for r in rows}
    keeper = max(plan, key=lambda ks: (ks[0] == 0, ks[0], -ks[1]))  # most labels, first seed
    for row in rows:  # points a checkpoint holds from before the baselines were part of a row
        if any(name not in row for name in BASELINES):
            k, s = row["labels_per_class"], row["seed"]
            index = plan[(k, s)]
            row.update(pixel_baselines(as_float(data.train_x[index]), data.train_y[index], data,
                                       seed + s))
    jobs = [(k, s, index, seed + s, model, (k, s) not in done,
             keep if (k, s, model) == (*keeper, "pretrained") else None)
            for (k, s), index in plan.items() for model in ("pretrained", "scratch")
            if (k, s) not in done or (k, s, model) == (*keeper, "pretrained")]
    processes = processes or workers(len(jobs))
    if processes > 1:
        log.info("%d classifiers on %d processes, one thread each", len(jobs), processes)
    policy = keras.config.dtype_policy().name
    halves = {}
    for k, s, values in Parallel(n_jobs=processes, return_as="generator_unordered")(
            delayed(train_and_score)(block, prepared, encoder_path, checkpoint.key, policy, *job)
            for job in jobs):
        if not values:
            continue
        if (k, s) not in halves:
            halves[(k, s)] = {"labels_per_class": k, "seed": s, "labels": len(plan[(k, s)]),
                              **values}
            continue
        row = {**halves.pop((k, s)), **values}
        log.info("%5d labels, seed %d: %s", row["labels"], s,
                 "  ".join(f"{kind} {row[kind]:.3f}" for kind in kinds(block)))
        rows.append(row)
        checkpoint.save({"rows": rows})
    return sorted(rows, key=lambda r: (r["labels"], r["seed"]))


def summarize(rows: list[dict], block: FinetuneBlock) -> tuple[dict, list[dict]]:
    """Mean ± std per (label count, model): the metrics dict and the plot-ready curve rows."""
    metrics, points = {}, []
    trained = kinds(block)
    for k in sorted({r["labels_per_class"] for r in rows}):
        point = [r for r in rows if r["labels_per_class"] == k]
        total = point[0]["labels"]
        entry = {"labels": total}
        for kind in trained:
            values = np.array([r[kind] for r in point])
            entry[f"{kind}_mean"] = round(float(values.mean()), 4)
            entry[f"{kind}_std"] = round(float(values.std()), 4)
        entry["gain_over_scratch"] = round(entry["pretrained_mean"] - entry["scratch_mean"], 4)
        best = max(entry[f"{b}_mean"] for b in BASELINES)
        entry["gain_over_best_baseline"] = round(entry["pretrained_mean"] - best, 4)
        metrics[f"labels_{total}"] = entry
        points.append({"labels": total, **{kind: entry[f"{kind}_mean"] for kind in trained},
                       **{f"{kind}_std": entry[f"{kind}_std"] for kind in trained}})
    return metrics, points
