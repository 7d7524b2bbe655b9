"""Verdicts: `evaluate` says in words when a model learned nothing, and the report shows it first."""

from __future__ import annotations

import json
import shutil

import numpy as np

from latentlab import ladder
from latentlab.compare import generation_columns
from latentlab.evaluation import (
    evaluate_base,
    evaluate_family,
    generation_verdict,
    reconstruction_verdict,
)
from latentlab.families import FAMILIES, Family, register, unregister
from latentlab.families.gan.model import build_gan
from latentlab.families.gan.params import GanBlock
from latentlab.precision import choose, hardware
from latentlab.report import tables
from stages import evaluator, pretrain, train
from tests.support.data import make_params, passes


def test_an_untrained_generator_learned_nothing_and_a_trained_one_did(digits_prepared, tmp_path):
    models = tmp_path / "models"
    params = make_params(
        pretrain={"codings": 8, "conv_filters": [8, 16], "contrastive_weight": 0.0, **passes(2)},
        train_vae={"latent": 4, "hidden_units": [32], **passes(2)},
        train_gan={"filters": [32, 64], "latent": 16, "batch_size": 64, **passes(50)},
        evaluator=passes(5),
        evaluate={"samples": 179, "kid_subsets": 2, "kid_subset_size": 50,
                  "memorization_samples": 100})
    pretrain.run(params, digits_prepared, models / "pretrain", tmp_path / "ck/pretrain",
                 tmp_path / "pretrain.json", tmp_path / "pretrain.csv")
    train.run(params, "vae", digits_prepared, models / "vae", tmp_path / "ck/vae",
                  tmp_path / "vae.json", tmp_path / "vae.csv", tmp_path / "vae_samples")
    evaluator.run(params, digits_prepared, models / "evaluator", tmp_path / "evaluator.json")
    (models / "gan").mkdir()
    build_gan(params.train_gan, (8, 8, 1)).generator.save(models / "gan/generator.keras")
    (models / "toy").mkdir()  # a family the registry is given below: an untrained GAN
    shutil.copy(models / "gan/generator.keras", models / "toy/generator.keras")
    (models / "toy/training.json").write_text(json.dumps({"images_seen": 640, "train_images": 1439}))

    evaluator_path = models / "evaluator"
    base = evaluate_base(params.evaluate, digits_prepared, models, evaluator_path, seed=0)

    def judged(family=FAMILIES["gan"]):
        return evaluate_family(family, params.evaluate, digits_prepared, models, evaluator_path,
                               seed=0, base=base)

    # The judge ranks the ladder of degraded digits in order: a verdict can be read on it.
    fd = {name: scores["frechet_distance"] for name, scores in base["anchors"]["ladder"].items()}
    assert list(fd) == list(ladder.NAMES) and ladder.in_order(fd), fd
    spreads = [scores["fd_spread"] for scores in base["anchors"]["ladder"].values()]
    assert all(0 < s < f for s, f in zip(spreads, fd.values())), spreads
    untrained = judged()
    assert untrained["verdict"].startswith("no better than per-pixel noise")
    assert "it learned nothing" in untrained["verdict"]
    assert untrained["ladder_position"] >= 1

    train.run(params, "gan", digits_prepared, models / "gan", tmp_path / "ck/gan",
                  tmp_path / "gan.json", tmp_path / "gan.csv", tmp_path / "gan_samples")
    trained = judged()
    assert not trained["verdict"].startswith("no better"), trained["verdict"]
    assert trained["ladder_position"] < 1 and trained["fd_spread"] > 0
    saved = json.loads((models / "gan/training.json").read_text())
    # 50 × 1,439 images asked for, in epochs of 22 full batches of 64: 51 epochs of 1,408.
    assert saved == {"images_seen": 51 * 1408, "epochs": 51, "planned_images": 51 * 1408,
                     "planned_epochs": 51, "train_images": 1439,
                     "batch_size": 64, "precision": choose("auto", hardware()).precision}

    # One more family in the registry: evaluate scores it, the report and compare show it.
    # (the GAN's package draws its samples)
    register(Family("toy", "Toy", GanBlock, "generator.keras", low_recall="it is a toy",
                    history=("loss",)), FAMILIES["gan"].package)
    try:
        results = {**base, **{f.name: judged(f) for f in FAMILIES.values()
                              if f.name in ("vae", "gan", "toy")}}
        assert results["toy"]["verdict"].startswith("no better than per-pixel noise")
        assert "raise train_toy.images_seen" in results["toy"]["verdict"]
        metrics = {f"evaluate/{name}": values for name, values in results.items()}
        shown = {t.title.split(" (")[0]: t for t in tables(metrics)}
        assert ["Toy", results["toy"]["verdict"]] in shown["Verdicts"].rows
        assert [row[0] for row in shown["Generation vs the test split"].rows] == [
            "VAE", "GAN", "Toy", "floor: held-out real", "ceiling: per-pixel Gaussian"]
        assert ("toy.kid", "Toy KID ↓") in generation_columns()
    finally:
        unregister("toy")


LADDER = {"real_holdout": 0.5, "train_copies": 0.6, "noised": 0.8, "blurred": 1.0,
          "one_mode": 3.0, "scrambled": 5.0, "blobs": 4.0, "smears": 6.0, "pixel_noise": 10.0}


def test_the_verdict_reads_the_score_on_the_ladder_and_names_what_the_generator_saw():
    anchors = {"ladder": {k: {"frechet_distance": v} for k, v in LADDER.items()}}
    run = {"images_seen": 1920, "train_images": 646}
    gan, vae = FAMILIES["gan"], FAMILIES["vae"]
    bad = generation_verdict(gan, {"frechet_distance": 11.0, "recall": 0.0}, anchors, run)
    assert bad["verdict"].startswith("no better than per-pixel noise (FD 11 against the noise's 10)")
    assert "it saw 1,920 images of a 646-image split" in bad["verdict"]
    assert "train_gan.images_seen" in bad["verdict"] and bad["ladder_position"] > 1
    smears = generation_verdict(gan, {"frechet_distance": 6.5, "recall": 0.01}, anchors, run)
    assert smears["verdict"].startswith("makes blobs and smears, not pictures: FD 6.5 lies "
                                        "nearest colour smears")
    assert "(recall 0.01): mode collapse" in smears["verdict"]
    blobs = generation_verdict(vae, {"frechet_distance": 3.0, "recall": 0.04}, anchors, run)
    assert blobs["verdict"].startswith("makes blobs and smears, not pictures: FD 3 lies nearest "
                                       "blobs")
    assert blobs["verdict"].endswith("(recall 0.04): they are blurry or too alike")
    # Between the blur (1) and blobs (4), the log midpoint (2) divides pictures from blobs.
    assert generation_verdict(gan, {"frechet_distance": 1.9}, anchors, run)["verdict"].startswith(
        "makes pictures: FD 1.9 lies nearest real images blurred by a pixel (1)")
    good = generation_verdict(gan, {"frechet_distance": 0.7, "recall": 0.4}, anchors, run)
    assert good["verdict"].startswith("makes pictures") and 0 < good["ladder_position"] < 1
    assert np.isclose(good["ladder_position"], np.log(0.7 / 0.5) / np.log(10 / 0.5))
    barely = generation_verdict(gan, {"frechet_distance": 9.0}, anchors, run)
    assert barely["verdict"].startswith("barely better than per-pixel noise")

    # A feature space that ranks blobs nearer than a blur cannot judge: no verdict, not a wrong one.
    muddled = {"ladder": {k: {"frechet_distance": v} for k, v in {**LADDER, "blobs": 0.9}.items()}}
    unread = generation_verdict(gan, {"frechet_distance": 1.0}, muddled, run)
    assert unread["verdict"].startswith("not judged: the evaluator's features do not rank")
    assert unread["ladder_position"] is None

    # Pictures and blobs a sampling spread apart (a weak judge on a few hundred images, as on 80
    # sprites: blur 3.2, blobs 4.2, each ± 0.8): a score between them is not read, whichever it
    # lies nearest; one far beyond the pictures still reads as blobs, and a resolved ladder reads.
    spread = {"ladder": {k: {"frechet_distance": v, "fd_spread": 1.5} for k, v in LADDER.items()}}
    for fd in (0.7, 1.9, 3.0):
        close = generation_verdict(gan, {"frechet_distance": fd, "fd_spread": 0.3}, spread, run)
        assert close["verdict"].startswith(f"not judged between pictures and blobs: FD {fd:g} "
                                           "lies nearest"), close["verdict"]
        assert "nearest rung that is not pictures (blobs, 4) only 1.4 sampling spreads from " \
               "real images blurred by a pixel (1; each moves by ±1.5 and ±1.5" in close["verdict"]
        assert close["ladder_position"] > 0
    far = generation_verdict(gan, {"frechet_distance": 6.0, "fd_spread": 0.5}, spread, run)
    assert far["verdict"].startswith("makes blobs and smears, not pictures: FD 6 lies nearest")
    unsure = generation_verdict(gan, {"frechet_distance": 6.0, "fd_spread": 3.0}, spread, run)
    assert unsure["verdict"].startswith("not judged between pictures and blobs")
    tight = {"ladder": {k: {**v, "fd_spread": 0.5} for k, v in spread["ladder"].items()}}
    assert generation_verdict(gan, {"frechet_distance": 0.7}, tight, run)["verdict"].startswith(
        "makes pictures")
    assert generation_verdict(gan, {"frechet_distance": 9.0}, spread, run)["verdict"].startswith(
        "barely better than per-pixel noise")

    # Early stopping, not the budget, ended the fit: more budget is not the advice.
    stopped = {"images_seen": 50_240, "planned_images": 150_720, "epochs": 5,
               "planned_epochs": 15, "train_images": 640}
    early = generation_verdict(vae, {"frechet_distance": 3.0}, anchors, stopped)
    assert "early stopping ended it after 5 of 15 epochs (50,240 of 150,720 images)" in early["verdict"]
    assert "will not help" in early["verdict"] and "raise" not in early["verdict"]
    # Nor when the val loss was lowest early and the weights of that epoch were kept.
    overfit = {"images_seen": 120_576, "planned_images": 120_576, "epochs": 12,
               "planned_epochs": 12, "best_epoch": 3, "train_images": 640}
    kept = generation_verdict(vae, {"frechet_distance": 3.0}, anchors, overfit)["verdict"]
    assert "its val loss was lowest after epoch 3 of 12 (the weights kept)" in kept
    assert "will not help" in kept
    late = generation_verdict(vae, {"frechet_distance": 3.0}, anchors, {**overfit, "best_epoch": 11})
    assert "raise train_vae.images_seen" in late["verdict"]

    report = tables({"evaluate/gan": {**bad, "frechet_distance": 11.0},
                     "evaluate/autoencoder": {"mse": 0.1, "verdict": "no better than ..."}})
    assert report[0].title == "Verdicts"
    assert report[0].rows == [["autoencoder", "no better than ..."], ["GAN", bad["verdict"]]]
    assert all(row[0] != "verdict" for row in report[1].rows), "not repeated in the AE table"


def test_the_autoencoder_verdict_says_when_the_colours_are_muted():
    run = {"images_seen": 150_720, "planned_images": 150_720, "epochs": 15, "planned_epochs": 15}
    values = {"mse": 0.02, "mean_image_mse": 0.08, "colour_error": 0.03}
    muted = reconstruction_verdict({**values, "saturation_kept": 0.5}, run)["verdict"]
    assert muted.startswith("rebuilds images: MSE 0.02 is 25 % of the mean image's 0.08")
    assert muted.endswith("but it mutes the colours: its reconstructions keep 50 % of their "
                          "strength (colour error 0.03)")
    assert "colours" not in reconstruction_verdict({**values, "saturation_kept": 0.95}, run)["verdict"]
    assert "colours" not in reconstruction_verdict({"mse": 0.02, "mean_image_mse": 0.08}, run)["verdict"]
