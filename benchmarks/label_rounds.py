"""Rounds of training on the graph's pseudo-labels (Iscen et al. 2019): does the network, taught
the Poisson pseudo-labels of the unlabeled images, make a graph that labels them better?

In a built project (`dvc repro pretrain`), for each label count and seed (the `finetune` stage's
own subsets, pretrained classifiers and graph sample of `semi_graph_images` images): the
stage's semi pretrained classifier (round 0: the network, the regression on its graph's
pseudo-labels, and the two averaged), then ``--rounds`` rounds of

- training a copy of the network 2 epochs at the fine-tune's learning rate on the labeled images
  and the graph's images with their pseudo-labels, each weighted by its certainty (the rank of
  the margin between its two largest Poisson solutions, 0 to 1) and by the inverse of its class's
  size; the labeled images weigh as the most certain;
- rebuilding the graph from the trained copy's codings and propagating again.

Each round is scored like round 0, with the share of the graph's images whose pseudo-label is
right (their labels read for that score alone). ``--augment`` flips and shifts (≤ 3 px) the
images of each round's epochs; ``--mirror`` builds round 0's graph on each image's codings summed
with its mirror image's; ``--with-scratch`` scores the four models of the stage averaged (semi
pretrained and semi scratch); ``--set KEY=VALUE`` overrides a `finetune` param
(`--set augment=shift_flip --set min_epoch_images=4096`). Writes
benchmarks/results/label_rounds.json.

    uv run python -m benchmarks.label_rounds --labels-per-class 10 100 --seeds 3 --rounds 2
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks import ROOT, Results, accuracy_summary, command_line


def shifted_and_flipped(x: np.ndarray, rng: np.random.Generator, shift: int = 3) -> np.ndarray:
    """Each image mirrored with probability 1/2 and moved by up to ``shift`` pixels each way."""
    x = np.where((rng.random(len(x)) < 0.5)[:, None, None, None], x[:, :, ::-1], x)
    padded = np.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    dy, dx = rng.integers(0, 2 * shift + 1, (2, len(x)))
    h, w = x.shape[1:3]
    return np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(len(x))])


def main() -> None:
    import keras

    from latentlab.data.prepared import as_float
    from latentlab.params import load_params, with_settings
    from latentlab.seeding import seed_everything
    from latentlab.training.graph import codings_and_probabilities, poisson_regression
    from latentlab.training.label_efficiency import (
        load_data,
        subsets,
        train_pretrained,
        train_scratch,
    )

    parser = command_line(__doc__)
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--with-scratch", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--encoder", type=Path, default=ROOT / "models/pretrain/encoder.keras")
    args = parser.parse_args()
    params = with_settings(load_params(), args.set, block="finetune")
    block = params.finetune.model_copy(update={"seeds": args.seeds,
                                               "labels_per_class": args.labels_per_class})
    data = load_data(ROOT / "data/prepared")
    n_classes = data.n_classes

    def graph(model, x, y, unlabeled, seed, mirror=False):
        """The regression on the graph's pseudo-labels (test probabilities), the network's test
        probabilities, the Poisson solution and pseudo-labels of the unlabeled images."""
        images = np.concatenate([x, unlabeled])
        codings = codings_and_probabilities(model, images)[0]
        test_codings, network = codings_and_probabilities(model, data.test_x)
        if mirror:
            codings = codings + codings_and_probabilities(model, images[:, :, ::-1])[0]
            test_codings = test_codings + codings_and_probabilities(model,
                                                                    data.test_x[:, :, ::-1])[0]
        regressed, u, pseudo = poisson_regression(codings, y, test_codings, n_classes,
                                                  block.semi_neighbours, seed)
        return regressed, network, u[len(x):], pseudo[len(x):]

    def score(probabilities):
        return float((probabilities.argmax(axis=1) == data.test_y).mean())

    rows = []
    for (k, s), index in subsets(block, data.train_y, params.base.seed).items():
        started = time.perf_counter()
        seed = params.base.seed + s
        x, y = as_float(data.train_x[index]), data.train_y[index]
        seed_everything(seed)
        model = train_pretrained(args.encoder, block, n_classes, x, y)
        others = np.setdiff1d(np.arange(len(data.train_y)), index)
        if block.semi_graph_images and block.semi_graph_images < len(others):
            others = np.sort(np.random.default_rng(seed).choice(others, block.semi_graph_images,
                                                                replace=False))
        unlabeled, truth = as_float(data.train_x[others]), data.train_y[others]
        row = {"labels_per_class": k, "seed": s, "labels": len(index)}
        regressed, network, u, pseudo = graph(model, x, y, unlabeled, seed, args.mirror)
        if args.with_scratch:
            seed_everything(seed)
            scratch = train_scratch(args.encoder, block, n_classes, x, y)
            scratch_regressed, scratch_network, _, _ = graph(scratch, x, y, unlabeled, seed)
            row["all_four"] = score(regressed + network + scratch_regressed + scratch_network)
        for r in range(args.rounds + 1):
            if r:
                top = np.sort(u, axis=1)
                certainty = np.argsort(np.argsort(top[:, -1] - top[:, -2])) / len(u)
                sizes = np.bincount(pseudo, minlength=n_classes)
                weights = certainty * len(pseudo) / (n_classes * np.maximum(sizes[pseudo], 1))
                images = np.concatenate([x, unlabeled])
                targets = np.concatenate([y, pseudo])
                weights = np.concatenate([np.full(len(x), weights.max()), weights])
                model.compile(optimizer=keras.optimizers.Adam(block.learning_rate
                                                              * block.finetune_lr_factor),
                              loss="sparse_categorical_crossentropy")
                rng = np.random.default_rng([seed, r])
                for _ in range(2):
                    seen = shifted_and_flipped(images, rng) if args.augment else images
                    model.fit(seen, targets, sample_weight=weights, epochs=1, batch_size=64,
                              verbose=0)
                regressed, network, u, pseudo = graph(model, x, y, unlabeled, seed)
            row.update({f"network_{r}": score(network), f"graph_{r}": score(regressed),
                        f"averaged_{r}": score(regressed + network),
                        f"pseudo_labels_right_{r}": float((pseudo == truth).mean())})
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(row, flush=True)
    summary = accuracy_summary(rows, skip=lambda name: name == "seconds")
    Results(args, "label_rounds").save(finetune=block.model_dump(), rows=rows, summary=summary)


if __name__ == "__main__":
    main()
