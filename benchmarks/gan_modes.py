"""Mode coverage of the GAN with each remedy off and on.

Trains an evaluator CNN on the full labeled train split, then the `train_gan` stage once per
configuration (same seed, data and epochs), samples 10,000 images from each generator and
classifies them: classes covered (≥ 1 % of samples) and KL(sample class histogram ‖ uniform).

    uv run python -m benchmarks.gan_modes [--epochs 3] [--train-images 20000]

Writes benchmarks/results/gan_modes.json.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from benchmarks import write_result
from latentlab.data.prepared import as_float, load_split
from latentlab.metrics import mode_coverage
from latentlab.models.classifier import build_evaluator
from latentlab.params import load_params, parse_params
from latentlab.seeding import seed_everything
from latentlab.training.stage import from_signed_range
from stages import train

RESULTS = Path(__file__).resolve().parent / "results" / "gan_modes.json"
PREPARED = Path("data/prepared")
SAMPLES = 10_000

CONFIGS = {
    "baseline": {},
    "replay": {"replay": True},
    "minibatch_stddev": {"minibatch": "stddev"},
    "minibatch_discrimination": {"minibatch": "discrimination"},
    "smoothing_flips_instance_noise": {"label_smoothing": 0.1, "label_flip": 0.05,
                                       "instance_noise": 0.1},
    "wgan_gp": {"loss": "wgan_gp"},
    "conditional": {"conditional": True},
}


def train_evaluator(epochs: int) -> tuple[keras.Model, float]:
    x, y = load_split(PREPARED, "train")
    xt, yt = load_split(PREPARED, "test")
    model = build_evaluator(tuple(x.shape[1:]), int(y.max()) + 1)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(as_float(x), y, epochs=epochs, batch_size=128, verbose=2)
    return model, float(model.evaluate(as_float(xt), yt, verbose=0)[1])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--evaluator-epochs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    seed_everything(0)
    evaluator, accuracy = train_evaluator(args.evaluator_epochs)
    results = {"evaluator_test_accuracy": round(accuracy, 4), "epochs": args.epochs,
               "train_images": args.train_images, "configs": {}}
    base = load_params().model_dump()
    for name in args.only:
        block = {**base["train_gan"], **CONFIGS[name], "max_train_images": args.train_images,
                 "images_seen": args.epochs * args.train_images, "min_epoch_images": 1}
        params = parse_params({**base, "train_gan": block})
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            start = time.perf_counter()
            metrics = train.run(params, "gan", PREPARED, tmp / "m", tmp / "ck", tmp / "m.json",
                                    tmp / "h.csv", tmp / "s")
            seconds = time.perf_counter() - start
            generator = keras.models.load_model(tmp / "m" / "generator.keras")
        rng = np.random.default_rng(1)
        noise = rng.standard_normal((SAMPLES, params.train_gan.latent)).astype("float32")
        inputs = noise
        if params.train_gan.conditional:
            inputs = [noise, np.eye(10, dtype="float32")[rng.integers(0, 10, SAMPLES)]]
        images = from_signed_range(generator.predict(inputs, batch_size=500, verbose=0))
        predicted = evaluator.predict(as_float(images), batch_size=500, verbose=0).argmax(1)
        coverage = mode_coverage(predicted, 10)
        results["configs"][name] = {
            "params": CONFIGS[name], **{k: round(v, 4) for k, v in coverage.items()},
            "final_d_loss": round(metrics["final_d_loss"], 4),
            "final_g_loss": round(metrics["final_g_loss"], 4),
            "seconds": round(seconds, 1),
        }
        logging.info("%s: %s", name, results["configs"][name])
        write_result(RESULTS, results)


if __name__ == "__main__":
    main()
