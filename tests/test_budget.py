"""Training budgets in images seen: small and large datasets train as many steps for one budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentlab.training.budget import (
    RepeatedImages,
    epoch_order,
    fit_inputs,
    plan,
    plan_block,
)
from latentlab.training.checkpoint import Checkpoint
from stages import download, downsample, pretrain, train
from tests.support.data import make_image_folder, make_params


def test_plan_derives_epochs_from_the_budget_and_repeats_small_splits():
    # Fashion-MNIST's 54,000 train images: an epoch is one pass, the default budgets' epochs.
    assert plan(54_000, 32, 162_000, 10_000).epochs == 3
    assert plan(54_000, 128, 1_350_000, 10_000).epochs == 25
    assert plan(54_000, 256, 1_080_000, 10_000, drop_remainder=False).epochs == 20
    assert not plan(54_000, 32, 162_000, 10_000).repeated
    # 600 images: an epoch repeats them to 10,000, and the budget buys about as many steps.
    small, large = plan(600, 32, 162_000, 10_000), plan(54_000, 32, 162_000, 10_000)
    assert small.repeated and small.passes == 17 and small.steps_per_epoch == 313
    assert abs(small.epochs * small.steps_per_epoch - large.epochs * large.steps_per_epoch) < 313
    assert plan(600, 32, 1, 10_000).epochs == 1, "at least one epoch"


def test_epoch_order_visits_every_image_once_per_pass():
    order = epoch_order(np.random.default_rng(0), 10, 25)
    assert len(order) == 25
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert not np.array_equal(order[:10], order[10:20]), "each pass is shuffled anew"


def test_repeated_images_are_seeded_by_epoch():
    images = np.arange(7 * 4, dtype=np.uint8).reshape(7, 2, 2, 1)
    budget = plan(7, 4, 100, 20)
    data = RepeatedImages(images, budget, seed=1)
    assert len(data) == 5 and data[0][0].dtype == np.float32 and data[0][0].max() <= 1.0
    first = [data[i][0] for i in range(len(data))]
    data.set_epoch(1)
    assert not all(np.array_equal(a, data[i][0]) for i, a in enumerate(first))
    data.set_epoch(0)
    assert all(np.array_equal(a, data[i][0]) for i, a in enumerate(first)), "same epoch, same batches"


@pytest.mark.parametrize("train_images", [512, 96], ids=["one pass an epoch", "repeated"])
def test_a_model_that_reads_no_targets_trains_the_same_without_them(train_images):
    """The contrastive autoencoder's loss reads the images alone: fed no targets (not a copy of
    the images as Keras' y), it trains to the same weights, on whole arrays and repeated splits."""
    import keras

    from latentlab.models.autoencoders import TrainingAutoencoder, build_autoencoder

    images = np.random.default_rng(0).integers(0, 256, (train_images, 8, 8, 1), dtype=np.uint8)
    block = make_params(pretrain={"codings": 4, "conv_filters": [4], "batch_size": 32,
                                  "images_seen": 1024, "min_epoch_images": 512}).pretrain
    budget = plan_block(block, train_images, drop_remainder=False)
    assert budget.repeated == (train_images < 512)
    weights = {}
    for targets in (True, False):
        inputs = fit_inputs(images, budget, seed=3, targets=targets)
        if budget.repeated:
            assert len(inputs["x"][0]) == (2 if targets else 1)
        else:
            assert (inputs["y"] is None) != targets
        keras.utils.set_random_seed(3)
        model = TrainingAutoencoder(build_autoencoder(block, (8, 8, 1)), 0.05, 0.2)
        model.compile(optimizer="adam")
        model.fit(**inputs, epochs=budget.epochs, verbose=0)
        weights[targets] = model.get_weights()
    assert len(weights[True]) == len(weights[False])
    for a, b in zip(weights[True], weights[False]):
        np.testing.assert_array_equal(a, b)


def _prepared_folder(root, count: int):
    make_image_folder(root / "images", None, count, formats=("PNG",), sizes=(10, 14))
    params = make_params(data={"source": "folder", "local_dir": str(root / "images")},
                         downsample={"image_size": 8, "workers": 1})
    download.run(params, root / "raw")
    downsample.run(params, root / "raw", root / "prepared", root / "card")
    return root / "prepared"


def _optimizer_steps(checkpoints, net: str) -> int:
    saved = json.loads((checkpoints / "checkpoint.json").read_text())
    checkpoint = Checkpoint(checkpoints, saved["key"])
    checkpoint.load()
    return int(checkpoint.arrays("state")[f"{net}/optimizer/0"])  # Adam's iteration count


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget")
    return {n: _prepared_folder(root / str(n), n) for n in (600, 6000)}


def test_a_600_and_a_6000_image_folder_train_as_many_steps(folders, tmp_path):
    budget = {"images_seen": 10_000, "min_epoch_images": 10_000}
    steps = {}
    for n, prepared in folders.items():
        out = tmp_path / str(n)
        gan = make_params(train_gan={"filters": [8], "latent": 4, "batch_size": 32, **budget})
        metrics = train.run(gan, "gan", prepared, *(out / "gan" / k for k in
                                                 ("models", "ck", "m.json", "h.csv", "samples")))
        vae = make_params(train_vae={"latent": 2, "hidden_units": [8], "batch_size": 64, **budget})
        train.run(vae, "vae", prepared, *(out / "vae" / k for k in
                                       ("models", "ck", "m.json", "h.csv", "samples")))
        steps[n] = (_optimizer_steps(out / "gan/ck", "generator"),
                    _optimizer_steps(out / "vae/ck", "vae"), metrics["images_seen"])
    assert steps[600] == steps[6000] == (313, 157, 10_016)


def test_pretrain_repeats_a_small_split_within_an_epoch(folders, tmp_path, caplog):
    block = {"codings": 4, "conv_filters": [4], "contrastive_weight": 0.0, "batch_size": 64,
             "images_seen": 4_000, "min_epoch_images": 2_000}
    with caplog.at_level("INFO", logger="stages.pretrain"):
        metrics = pretrain.run(make_params(pretrain=block), folders[600], tmp_path / "models",
                               tmp_path / "ck", tmp_path / "m.json", tmp_path / "h.csv")
    assert metrics["epochs_trained"] == 2
    assert "training on 4,096 images (64 steps of 64) in 2 epochs of 2,048" in caplog.text
    assert "repeated up to 5× per epoch" in caplog.text
    saved = json.loads((tmp_path / "ck/full/checkpoint.json").read_text())
    last = Checkpoint(tmp_path / "ck/full", saved["key"])
    last.load()
    assert int(last.arrays("last")["optimizer/0"]) == 64  # 2 epochs of 32 full batches


def test_a_last_partial_batch_is_not_a_repeat():
    # Keras' fit keeps the last partial batch: 12 batches of 128 cover 1,439 images once.
    budget = plan(1439, 128, 1439, 1, drop_remainder=False)
    assert not budget.repeated and budget.epoch_images == 1439 and budget.epochs == 1
    assert plan(1439, 128, 1439, 2000, drop_remainder=False).repeated


def test_a_repeated_split_continues_to_a_larger_budget_as_a_fresh_run_would(folders, tmp_path):
    block = {"codings": 4, "conv_filters": [4], "contrastive_weight": 0.0, "batch_size": 64,
             "min_epoch_images": 1_000, "patience": 100}

    def run(where, images_seen):
        params = make_params(pretrain={**block, "images_seen": images_seen})
        return pretrain.run(params, folders[600], where / "models", where / "ck", where / "m.json",
                            where / "h.csv")

    assert run(tmp_path / "a", 2_048)["epochs_trained"] == 2   # epochs of 16 batches of 64
    assert run(tmp_path / "a", 3_072)["epochs_trained"] == 3   # continues with the third
    run(tmp_path / "b", 3_072)
    assert (tmp_path / "a/h.csv").read_text() == (tmp_path / "b/h.csv").read_text()
