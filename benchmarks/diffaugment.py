"""DiffAugment off and on at equal images seen, scored by the project's own judge.

Runs in a built project (its data/prepared, models/pretrain and models/evaluator): trains the `train_gan` stage twice from the project's
params, `diffaugment: []` and the paper's policy, with the same seed, data and budget, and
scores 5,000 samples of each (or as many as the test split has) as `evaluate` does, next to the
anchors:

    cd PROJECT && python -m benchmarks.diffaugment --name emoji64
    python -m benchmarks.diffaugment --name fmnist5000 --train-images 5000 --images-seen 160000

Writes benchmarks/results/diffaugment_<name>.json and a 8×8 sample grid per run beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from benchmarks import write_result
from latentlab.evaluation import evaluate_base, generation_verdict, setting
from latentlab.families import FAMILIES
from latentlab.galleries import save_grid
from latentlab.models.sampling import gan_samples
from latentlab.params import load_params, parse_params
from latentlab.seeding import seed_everything

RESULTS = Path(__file__).resolve().parent / "results"
PREPARED, MODELS = Path("data/prepared"), Path("models")
POLICY = ["color", "translation", "cutout"]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--train-images", type=int, default=0, help="0 = the whole train split")
    parser.add_argument("--images-seen", type=int, default=0, help="0 = the params' budget")
    args = parser.parse_args()
    base = load_params().model_dump()
    seed = base["base"]["seed"]
    seed_everything(seed)
    block = load_params().evaluate
    scene = setting(block, PREPARED, MODELS, MODELS / "evaluator", seed)
    scorer, n, train = scene.judge, len(scene.real), scene.train
    anchors = evaluate_base(block, PREPARED, MODELS, MODELS / "evaluator", seed)["anchors"]
    results = {"samples": n, "anchors": anchors, "runs": {}}
    out = RESULTS / f"diffaugment_{args.name}.json"
    for policy in ([], POLICY):
        block = {**base["train_gan"], "diffaugment": policy,
                 "max_train_images": args.train_images or base["train_gan"]["max_train_images"]}
        if args.images_seen:
            block["images_seen"] = args.images_seen
        params = parse_params({**base, "train_gan": block})
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            start = time.perf_counter()
            metrics = train.run(params, "gan", PREPARED, tmp / "m", tmp / "ck", tmp / "m.json",
                                    tmp / "h.csv", tmp / "s")
            seconds = time.perf_counter() - start
            generator = keras.models.load_model(tmp / "m" / "generator.keras")
        samples = gan_samples(generator, n, seed)
        name = "on" if policy else "off"
        save_grid((samples[:64] * 255).round().astype(np.uint8),
                  RESULTS / f"diffaugment_{args.name}_{name}.png", columns=8)
        scores = scorer(samples)
        results["runs"][name] = {
            "diffaugment": policy, "images_seen": metrics["images_seen"],
            "train_images": args.train_images or len(train), "seconds": round(seconds, 1),
            **{k: round(v, 4) for k, v in scores.items()},
            "verdict": generation_verdict(FAMILIES["gan"], scores, anchors, {})["verdict"],
        }
        logging.info("%s: %s", name, json.dumps(results["runs"][name]))
        write_result(out, results)


if __name__ == "__main__":
    main()
