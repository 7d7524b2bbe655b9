"""The evaluator stage's judge: supervised where there are labels, contrastive where there are
none, and the contrastive one never reads a label."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from latentlab.errors import UserError
from stages import evaluator
from tests.support.data import make_params, passes


def contrastive(tmp_path, prepared, name: str):
    params = make_params(evaluator={"kind": "contrastive", **passes(10)})
    metrics = evaluator.run(params, prepared, tmp_path / name, tmp_path / f"{name}.json")
    return metrics, keras.models.load_model(tmp_path / name / "features.keras")


def test_the_contrastive_judge_never_reads_the_labels(digits_prepared, tmp_path):
    scrambled = tmp_path / "scrambled"
    shutil.copytree(digits_prepared, scrambled)
    for split in ("train", "val", "test"):
        labels = np.load(scrambled / f"{split}_labels.npy")
        np.save(scrambled / f"{split}_labels.npy", np.random.default_rng(1).permutation(labels))
    first, features = contrastive(tmp_path, digits_prepared, "real")
    second, scrambled_features = contrastive(tmp_path, scrambled, "scrambled")
    assert first == second and first["features"] == "contrastive"
    assert not (tmp_path / "real/evaluator.keras").exists()  # no classifier: nothing to cover
    for a, b in zip(features.get_weights(), scrambled_features.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # It learned the images: a third of the held-out images find their own other view among
    # 180 (chance: under 1 %; an untrained judge: about 12 %).
    assert first["view_retrieval"] > 0.3
    assert features.output_shape == (None, 128)
    assert json.loads((tmp_path / "real.json").read_text()) == first


def test_a_supervised_judge_needs_labels(tmp_path, digits_prepared):
    unlabeled = tmp_path / "unlabeled"
    shutil.copytree(digits_prepared, unlabeled)
    meta = json.loads((unlabeled / "meta.json").read_text())
    (unlabeled / "meta.json").write_text(json.dumps({**meta, "class_names": None}))
    params = make_params(evaluator={"kind": "supervised", **passes(1)})
    with pytest.raises(UserError, match="evaluator.kind: supervised needs labels.*kind: auto"):
        evaluator.run(params, unlabeled, tmp_path / "models", tmp_path / "e.json")
    assert not (tmp_path / "models").exists()


def test_auto_judges_in_contrastive_features_when_the_classifier_is_weak(digits_prepared, tmp_path):
    """A classifier under `min_accuracy` still gives the classes, not the feature space."""
    params = make_params(evaluator={"min_accuracy": 1.0, **passes(2)})
    metrics = evaluator.run(params, digits_prepared, tmp_path / "weak", tmp_path / "weak.json")
    assert metrics["features"] == "contrastive" and metrics["test_accuracy"] < 1.0
    assert "view_retrieval" in metrics
    assert (tmp_path / "weak/evaluator.keras").is_file()
    judge = json.loads((tmp_path / "weak/judge.json").read_text())
    assert judge == {"features": "contrastive"}
    strong = evaluator.run(make_params(evaluator={"min_accuracy": 0.0, **passes(2)}),
                           digits_prepared, tmp_path / "strong", tmp_path / "strong.json")
    assert strong["features"] == "supervised" and "view_retrieval" not in strong
    assert strong["test_accuracy"] == metrics["test_accuracy"]  # the same classifier
