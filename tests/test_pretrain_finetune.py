"""Stages `pretrain` and `finetune` on real digits, with tiny params."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from latentlab.data.prepared import as_float, load_split
from latentlab.errors import UserError
from latentlab.training.checkpoint import Checkpoint
from latentlab.training.label_efficiency import (
    BASELINES,
    KINDS,
    SEMI_KINDS,
    curve,
    load_data,
    pixel_baselines,
    poisson_semi,
    subsets,
    train_pretrained,
    train_semi,
    workers,
)
from stages import finetune, pretrain
from tests.support.data import make_params, passes

PRETRAIN = {"architecture": "conv", "codings": 8, "conv_filters": [8, 16], **passes(8),
            "batch_size": 32, "learning_rate": 0.003, "contrastive_weight": 0.0}
FINETUNE = {"labels_per_class": [2, 5], "seeds": 2, "head_units": 8, "head_epochs": 5,
            "finetune_epochs": 5, "min_epoch_images": 256, "augment": "none", "learning_rate": 0.01}


def paths(root):
    return {
        "pretrain": dict(models_dir=root / "models/pretrain", checkpoints=root / "ck/pretrain",
                         metrics_path=root / "metrics/pretrain.json",
                         history_path=root / "plots/pretrain_history.csv"),
        "finetune": dict(encoder_path=root / "models/pretrain/encoder.keras",
                         models_dir=root / "models/finetune", checkpoints=root / "ck/finetune",
                         metrics_path=root / "metrics/finetune.json",
                         curve_path=root / "plots/finetune_curve.csv",
                         runs_path=root / "plots/finetune_runs.csv"),
    }


@pytest.fixture(scope="module")
def trained(digits_prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    params = make_params(pretrain=PRETRAIN, finetune=FINETUNE)
    metrics = pretrain.run(params, digits_prepared, **paths(root)["pretrain"])
    return root, params, metrics


def test_pretrain_writes_models_metrics_and_history(trained, digits_prepared):
    root, _, metrics = trained
    assert set(metrics) >= {"val_mse", "mean_coding_activation", "near_zero_coding_fraction"}
    val = as_float(load_split(digits_prepared, "val")[0])
    mean_image_mse = float(np.mean((val - as_float(load_split(digits_prepared, "train")[0]).mean(0)) ** 2))
    assert 0 < metrics["val_mse"] < 0.8 * mean_image_mse  # it learned more than the average digit
    encoder = keras.models.load_model(root / "models/pretrain/encoder.keras")
    decoder = keras.models.load_model(root / "models/pretrain/decoder.keras")
    mse = float(np.mean((decoder.predict(encoder.predict(val, verbose=0), verbose=0) - val) ** 2))
    assert mse == pytest.approx(metrics["val_mse"], rel=1e-4)  # the saved models are the measured ones
    with open(root / "plots/pretrain_history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == metrics["epochs_trained"]
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    assert json.loads((root / "metrics/pretrain.json").read_text()) == metrics


def test_pretrain_is_repeatable_with_one_seed(trained, digits_prepared, tmp_path):
    root, params, metrics = trained
    again = pretrain.run(params, digits_prepared, **paths(tmp_path)["pretrain"])
    assert again["val_mse"] == metrics["val_mse"]


def test_tied_layerwise_sparse_denoising_contrastive_dense_pretrain(digits_prepared, tmp_path):
    params = make_params(pretrain={"architecture": "dense", "hidden_units": [24], "codings": 12,
                                   "tied_weights": True, "layerwise": True, "noise": "gaussian",
                                   "sparsity": "kl", "contrastive_weight": 0.05, **passes(2)})
    metrics = pretrain.run(params, digits_prepared, **paths(tmp_path)["pretrain"])
    for layer in ("layer_0", "layer_1", "full"):  # each fit of the stack checkpoints on its own
        saved = json.loads((tmp_path / f"ck/pretrain/{layer}/checkpoint.json").read_text())
        assert saved["state"]["epoch"] == 1 and len(saved["state"]["history"]["loss"]) == 2
    assert 0 < metrics["mean_coding_activation"] < 1  # sigmoid codings


def test_contrastive_pretrain_is_repeatable_resumes_and_saves_the_measured_models(
        digits_prepared, tmp_path, caplog):
    block = {**PRETRAIN, **passes(3), "contrastive_weight": 0.05}
    params = make_params(pretrain=block)
    first = pretrain.run(params, digits_prepared, **paths(tmp_path / "a")["pretrain"])
    again = pretrain.run(params, digits_prepared, **paths(tmp_path / "b")["pretrain"])
    assert again == first  # one seed drives the random views too
    with caplog.at_level("INFO", logger="latentlab.training.fit"):  # more epochs continue
        more = pretrain.run(make_params(pretrain={**block, **passes(4)}), digits_prepared,
                            **paths(tmp_path / "b")["pretrain"])
    assert any("from epoch 4 of 4" in m for m in caplog.messages)
    assert more["epochs_trained"] == 4
    val = as_float(load_split(digits_prepared, "val")[0])
    encoder = keras.models.load_model(tmp_path / "a/models/pretrain/encoder.keras")
    decoder = keras.models.load_model(tmp_path / "a/models/pretrain/decoder.keras")
    mse = float(np.mean((decoder.predict(encoder.predict(val, verbose=0), verbose=0) - val) ** 2))
    assert mse == pytest.approx(first["val_mse"], rel=1e-4)  # measured on the images themselves


def test_finetune_curve_pretrained_scratch_and_probe(trained, digits_prepared):
    root, params, _ = trained
    metrics = finetune.run(params, digits_prepared, **paths(root)["finetune"])
    assert list(metrics) == ["labels_20", "labels_50"]
    for entry in metrics.values():
        for kind in KINDS:
            assert 0.3 < entry[f"{kind}_mean"] <= 1.0, metrics  # chance is 0.1
    for kind in KINDS:  # more labels never make a model collapse (pretrained once did at 64×64)
        assert metrics["labels_50"][f"{kind}_mean"] > metrics["labels_20"][f"{kind}_mean"] - 0.05
    with open(root / "plots/finetune_runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4 and {r["seed"] for r in runs} == {"0", "1"}
    curve = (root / "plots/finetune_curve.csv").read_text().splitlines()
    assert curve[0].startswith("labels,pretrained,scratch,probe")
    classifier = keras.models.load_model(root / "models/finetune/classifier.keras")
    assert classifier.output_shape == (None, 10)


def test_finetune_resumes_without_retraining_finished_points(trained, digits_prepared, caplog):
    root, params, _ = trained
    first = finetune.run(params, digits_prepared, **paths(root)["finetune"])
    journal = root / "ck/finetune/checkpoint.json"
    saved = json.loads(journal.read_text())
    assert len(saved["state"]["rows"]) == 4
    saved["state"]["rows"] = saved["state"]["rows"][:3]  # as if killed after three points
    journal.write_text(json.dumps(saved))
    with caplog.at_level("INFO", logger="latentlab.training.label_efficiency"):
        second = finetune.run(params, digits_prepared, **paths(root)["finetune"])
    trained_now = [r for r in caplog.messages if "labels, seed" in r]
    assert len(trained_now) == 1  # only the missing point was trained
    assert second == first


def test_the_curve_gives_the_same_rows_and_classifier_on_one_process_and_on_two(
        trained, digits_prepared, tmp_path):
    root, params, _ = trained
    block = params.finetune.model_copy(update={"labels_per_class": [2], "head_epochs": 2,
                                               "finetune_epochs": 2})
    runs = []
    for processes in (1, 2):
        keep = tmp_path / f"classifier-{processes}.keras"
        rows = curve(block, digits_prepared, root / "models/pretrain/encoder.keras",
                     Checkpoint(tmp_path / f"ck-{processes}", "key"), params.base.seed, keep,
                     processes)
        runs.append((rows, keras.models.load_model(keep).get_weights()))
    (rows, weights), (rows_two, weights_two) = runs
    assert len(rows) == 2 and rows == rows_two
    assert len(weights) == len(weights_two)
    for one, two in zip(weights, weights_two):
        np.testing.assert_array_equal(one, two)


def _compiled_on_its_own(encoder_path, block, n_classes, x, y, pretrained: bool):
    """The recipe `train_pretrained` / `train_scratch` follow, each fit compiling the classifier
    itself (a new train function each time)."""
    from latentlab.models.classifier import build_classifier, fresh_copy

    encoder = keras.models.load_model(encoder_path)
    encoder = encoder if pretrained else fresh_copy(encoder)
    model = build_classifier(encoder, n_classes, block.head_units, block.augment,
                             block.augment_shift)
    repeats = -(-block.min_epoch_images // len(x))
    x, y = np.concatenate([x] * repeats), np.concatenate([y] * repeats)
    for epochs, lr, frozen in ((block.head_epochs, block.learning_rate, pretrained),
                               (block.finetune_epochs,
                                block.learning_rate * block.finetune_lr_factor, False)):
        encoder.trainable = not frozen
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=epochs, batch_size=block.batch_size, verbose=0)
    return model


def test_a_classifier_trained_on_the_processes_compiled_copy_is_the_one_compiled_on_its_own(
        trained, digits_prepared):
    from latentlab.seeding import seed_everything
    from latentlab.training.label_efficiency import _COMPILED, train_scratch

    root, params, _ = trained
    # random shifts and flips: the copy's random layers are seeded as the classifier's own
    block = params.finetune.model_copy(update={"head_epochs": 1, "finetune_epochs": 1,
                                               "augment": "shift_flip"})
    encoder = root / "models/pretrain/encoder.keras"
    data = load_data(digits_prepared)
    plan = subsets(block, data.train_y, params.base.seed)
    _COMPILED.clear()
    for train, pretrained in ((train_pretrained, True), (train_scratch, False)):
        for (k, s) in [(5, 1), (2, 0)]:  # the second reuses the first's compiled copy
            x, y = as_float(data.train_x[plan[(k, s)]]), data.train_y[plan[(k, s)]]
            seed_everything(s)
            weights = [w.copy() for w in train(encoder, block, data.n_classes, x, y).get_weights()]
            seed_everything(s)
            alone = _compiled_on_its_own(encoder, block, data.n_classes, x, y, pretrained)
            assert len(weights) == len(alone.get_weights())
            for a, b in zip(weights, alone.get_weights()):
                np.testing.assert_array_equal(a, b)
    if keras.backend.backend() == "tensorflow":  # pretrained: its head, then the whole network
        assert len(_COMPILED) == 3  # and scratch: the whole network


def test_the_curves_processes_one_per_core_or_as_many_as_set(monkeypatch):
    monkeypatch.delenv("LATENTLAB_PROCESSES")
    assert workers(1) == 1 and workers(100) == len(os.sched_getaffinity(0))
    monkeypatch.setenv("LATENTLAB_PROCESSES", "3")
    assert workers(2) == 2 and workers(100) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("LATENTLAB_PROCESSES", bad)
        with pytest.raises(UserError, match=f"LATENTLAB_PROCESSES='{bad}': give a whole number"):
            workers(4)


def test_pixel_baselines_score_exactly_the_stages_labeled_subsets(trained, digits_prepared):
    root, params, _ = trained
    first = finetune.run(params, digits_prepared, **paths(root)["finetune"])
    with open(root / "plots/finetune_runs.csv") as f:
        runs = list(csv.DictReader(f))
    data = load_data(digits_prepared)
    plan = subsets(params.finetune, data.train_y, params.base.seed)
    other = subsets(params.finetune, data.train_y, params.base.seed + 7)  # other images, same sizes
    differ = 0
    for row in runs:
        key, seed = (int(row["labels_per_class"]), int(row["seed"])), params.base.seed + int(row["seed"])
        index = plan[key]
        scores = pixel_baselines(as_float(data.train_x[index]), data.train_y[index], data, seed)
        assert {k: float(row[k]) for k in BASELINES} == pytest.approx(scores, abs=1e-12), row
        index = other[key]
        differ += scores != pixel_baselines(as_float(data.train_x[index]), data.train_y[index],
                                            data, seed)
    assert differ > 0
    # a checkpoint written before the baselines were part of a row gets them added, the same
    journal = root / "ck/finetune/checkpoint.json"
    saved = json.loads(journal.read_text())
    for row in saved["state"]["rows"]:
        for name in BASELINES:
            del row[name]
    journal.write_text(json.dumps(saved))
    assert finetune.run(params, digits_prepared, **paths(root)["finetune"]) == first


def _labels_shuffled_outside_the_subset(params, data, labels_per_class: int):
    """The stage's first subset of ``labels_per_class`` and the train labels with every label
    outside it shuffled."""
    index = subsets(params.finetune, data.train_y, params.base.seed)[(labels_per_class, 0)]
    others = np.setdiff1d(np.arange(len(data.train_y)), index)
    shuffled = np.array(data.train_y)
    shuffled[others] = np.random.default_rng(0).permutation(shuffled[others])
    assert (shuffled != data.train_y).any()
    return index, shuffled


def _finetune_semi(trained, digits_prepared, name: str, **semi):
    """``finetune`` with the semi-supervised settings ``semi``, on the trained encoder, into
    its own folder: its params, the encoder's path and its metrics."""
    root, _, _ = trained
    params = make_params(pretrain=PRETRAIN, finetune={**FINETUNE, "seeds": 1, **semi})
    encoder = root / "models/pretrain/encoder.keras"
    metrics = finetune.run(params, digits_prepared,
                           **{**paths(root / name)["finetune"], "encoder_path": encoder})
    return params, encoder, metrics


def test_fixmatch_adds_two_classifiers_that_never_read_the_unlabeled_images_labels(
        trained, digits_prepared):
    root = trained[0]
    params, encoder, metrics = _finetune_semi(trained, digits_prepared, "semi",
                                              labels_per_class=[5], semi_supervised="fixmatch",
                                              semi_steps=120)
    for kind in SEMI_KINDS:
        assert 0.3 < metrics["labels_50"][f"{kind}_mean"] <= 1.0, metrics  # chance is 0.1
    curve = (root / "semi/plots/finetune_curve.csv").read_text().splitlines()[0].split(",")
    assert curve[1:1 + len(KINDS) + 2] == [*KINDS, *SEMI_KINDS]

    # The same subset, with every other train image's label shuffled: the very same network.
    data = load_data(digits_prepared)
    index, shuffled = _labels_shuffled_outside_the_subset(params, data, 5)
    x, y = as_float(data.train_x[index]), data.train_y[index]
    start = train_pretrained(encoder, params.finetune, data.n_classes, x, y)
    before = start.get_weights()
    weights = [train_semi(start, params.finetune, d, index, 7).get_weights()
               for d in (data, dataclasses.replace(data, train_y=shuffled))]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    # It trains a copy: the supervised model it starts from is scored as it was.
    for a, b in zip(before, start.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any((a != b).any() for a, b in zip(before, weights[0]))


def test_poisson_learning_adds_two_classifiers_that_never_read_the_unlabeled_images_labels(
        trained, digits_prepared):
    params, encoder, metrics = _finetune_semi(trained, digits_prepared, "poisson",
                                              labels_per_class=[2], semi_supervised="poisson",
                                              semi_graph_images=0)
    point = metrics["labels_20"]
    for kind in SEMI_KINDS:
        assert 0.3 < point[f"{kind}_mean"] <= 1.0, metrics  # chance is 0.1
    # two labels a class: the graph of the unlabeled images carries them further than the
    # network that made it
    assert point["semi_pretrained_mean"] > point["pretrained_mean"], metrics
    assert point["semi_scratch_mean"] > point["scratch_mean"], metrics

    # The same subset, with every other train image's label shuffled: the same probabilities.
    data = load_data(digits_prepared)
    index, shuffled = _labels_shuffled_outside_the_subset(params, data, 2)
    start = train_pretrained(encoder, params.finetune, data.n_classes,
                             as_float(data.train_x[index]), data.train_y[index])
    before = start.get_weights()
    runs = [poisson_semi(start, params.finetune, d, index, 7)
            for d in (data, dataclasses.replace(data, train_y=shuffled))]
    np.testing.assert_array_equal(*runs)
    np.testing.assert_allclose(runs[0].sum(axis=1), 1, atol=1e-5)
    for a, b in zip(before, start.get_weights()):  # the network is used, never trained
        np.testing.assert_array_equal(a, b)
    # a smaller graph: a seeded sample of the other images, the same for the same seed
    small = params.finetune.model_copy(update={"semi_graph_images": 300})
    drawn = [poisson_semi(start, small, data, index, seed) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert (drawn[0] != drawn[2]).any()
    # every label given: no image to carry them to, the network as it is
    every = np.arange(len(data.train_y))
    np.testing.assert_allclose(poisson_semi(start, params.finetune, data, every, 7),
                               start.predict(data.test_x, verbose=0), atol=1e-6)


def test_every_label_is_one_subset_trained_once_whatever_the_seeds(digits_prepared):
    data = load_data(digits_prepared)
    block = make_params(finetune={**FINETUNE, "labels_per_class": [0, 2], "seeds": 3}).finetune
    plan = subsets(block, data.train_y, 0)
    assert sorted(plan) == [(0, 0), (2, 0), (2, 1), (2, 2)]
    assert len(plan[(0, 0)]) == len(data.train_y)
    assert len({tuple(plan[(2, s)]) for s in range(3)}) == 3  # other seeds, other small subsets


def test_finetune_rejects_more_labels_than_a_class_has_before_training(trained, digits_prepared):
    root, _, _ = trained
    params = make_params(pretrain=PRETRAIN, finetune={**FINETUNE, "labels_per_class": [5, 500]})
    with pytest.raises(UserError, match="labels_per_class=500: class .* has only"):
        finetune.run(params, digits_prepared, **paths(root / "bad")["finetune"])
    assert not (root / "bad").exists()


def test_finetune_needs_a_pretrained_encoder(digits_prepared, tmp_path):
    params = make_params(finetune=FINETUNE)
    with pytest.raises(UserError, match="run `dvc repro pretrain` first"):
        finetune.run(params, digits_prepared, **paths(tmp_path)["finetune"])


def test_pretrain_without_a_val_split_is_a_clear_error(tmp_path, digits_prepared):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for split in ("train", "val", "test"):
        images, labels = load_split(digits_prepared, split, mmap=False)
        if split == "val":
            images, labels = images[:0], labels[:0]
        np.save(prepared / f"{split}_images.npy", images)
        np.save(prepared / f"{split}_labels.npy", labels)
    with pytest.raises(UserError, match="downsample.val_fraction > 0"):
        pretrain.run(make_params(pretrain=PRETRAIN), prepared, **paths(tmp_path)["pretrain"])
