"""Label propagation on the unlabeled train images: does the graph of the pretrained encoder's
codings carry a few labels further than the classifiers of the `finetune` stage?

On the prepared data and the pretrained encoder of this checkout's last `dvc repro`, for each
label count and seed (the `finetune` stage's own nested subsets), two propagations over a
k-nearest-neighbour graph of every train image, on the train split's codings or, as the
baseline, on its pixels reduced by PCA, each scored on the test split:

- label spreading (scikit-learn, the labeled images clamped softly; test images classified
  through the graph's kernel);
- Poisson learning (Calder et al. 2020, the method of the GraphLearning package): the labels
  enter as sources of a graph Poisson equation, solved by its own iteration until a random walk
  from the labeled images has mixed; every train image takes the class of its largest solution,
  and a logistic regression on those pseudo-labels classifies the test split.

Beside them, the pixel baselines of the stage on the same subset. Writes
benchmarks/results/label_propagation.json.

    uv run python -m benchmarks.label_propagation --labels 10 50 100 --seeds 5
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks import ROOT, Results, accuracy_summary, command_line


def features(prepared: Path, encoder_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(train, test) features: the encoder's codings (unit length) and 50 PCA components of the
    pixels, both fitted without labels."""
    import keras
    from sklearn.decomposition import PCA

    import latentlab.models  # noqa: F401 - the custom layers of saved models
    from latentlab.data.prepared import as_float, load_split
    from latentlab.training.graph import unit_rows

    train = as_float(load_split(prepared, "train")[0])
    test = as_float(load_split(prepared, "test")[0])
    encoder = keras.models.load_model(encoder_path)

    codings = [unit_rows(encoder.predict(x, batch_size=1024, verbose=0)) for x in (train, test)]
    pca = PCA(50, random_state=0).fit(train.reshape(len(train), -1))
    pixels = [pca.transform(x.reshape(len(x), -1)) for x in (train, test)]
    return {"codings": tuple(codings), "pixels_pca50": tuple(pixels)}


def spread(train: np.ndarray, train_y: np.ndarray, index: np.ndarray, test: np.ndarray,
           neighbours: int, alpha: float) -> np.ndarray:
    """Label spreading over every train image (unlabeled ones as -1); the test predictions."""
    from sklearn.semi_supervised import LabelSpreading

    targets = np.full(len(train), -1)
    targets[index] = train_y[index]
    model = LabelSpreading(kernel="knn", n_neighbors=neighbours, alpha=alpha, max_iter=100,
                           n_jobs=-1)
    return model.fit(train, targets).predict(test)


def poisson(train: np.ndarray, graph, train_y: np.ndarray, index: np.ndarray, test: np.ndarray,
            n_classes: int, seed: int) -> tuple[np.ndarray, float, int]:
    """Poisson learning over the train graph (`latentlab.training.graph`, whose classifier
    also averages in a fine-tuned network's; here the graph is of the frozen encoder's codings or
    of pixels), then a logistic regression on its pseudo-labels:
    the test predictions, the pseudo-labels' accuracy on the unlabeled train images (read only
    to score them) and the iterations."""
    from sklearn.linear_model import LogisticRegression

    from latentlab.training.graph import poisson_labels

    pseudo, iterations = poisson_labels(graph, index, train_y[index], n_classes)
    unlabeled = np.ones(len(train), bool)
    unlabeled[index] = False
    right = float((pseudo[unlabeled] == train_y[unlabeled]).mean())
    clf = LogisticRegression(max_iter=500, random_state=seed).fit(train, pseudo)
    return clf.predict(test), right, iterations


def main() -> None:
    from latentlab.data.prepared import as_float, load_split
    from latentlab.params import load_params
    from latentlab.training.graph import knn_graph
    from latentlab.training.label_efficiency import load_data, pixel_baselines, subsets

    parser = command_line(__doc__)
    parser.add_argument("--prepared", type=Path, default=ROOT / "data/prepared")
    parser.add_argument("--encoder", type=Path, default=ROOT / "models/pretrain/encoder.keras")
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100],
                        help="labels per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.9)
    args = parser.parse_args()
    params = load_params()
    block = params.finetune.model_copy(update={"labels_per_class": args.labels,
                                               "seeds": args.seeds})
    data = load_data(args.prepared)
    test_y = load_split(args.prepared, "test")[1]
    plan = subsets(block, data.train_y, params.base.seed)  # the stage's own subsets
    started = time.perf_counter()
    spaces = features(args.prepared, args.encoder)
    print(f"features in {time.perf_counter() - started:.0f} s", flush=True)
    graphs = {}
    for name, (train, _) in spaces.items():
        started = time.perf_counter()
        graphs[name] = knn_graph(train, args.neighbours)
        print(f"{name} graph in {time.perf_counter() - started:.0f} s", flush=True)
    rows = []
    for (k, s), index in plan.items():
        row = {"labels_per_class": k, "seed": s, "labels": len(index)}
        for name, (train, test) in spaces.items():
            started = time.perf_counter()
            predicted = spread(train, data.train_y, index, test, args.neighbours, args.alpha)
            row[f"spread_{name}"] = float((predicted == test_y).mean())
            row[f"spread_{name}_seconds"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            predicted, right, iterations = poisson(train, graphs[name], data.train_y, index, test,
                                                   data.n_classes, params.base.seed + s)
            row[f"poisson_{name}"] = float((predicted == test_y).mean())
            row[f"poisson_{name}_pseudo_labels_right"] = right
            row[f"poisson_{name}_iterations"] = iterations
            row[f"poisson_{name}_seconds"] = round(time.perf_counter() - started, 1)
        row.update(pixel_baselines(as_float(data.train_x[index]), data.train_y[index], data,
                                   params.base.seed + s))
        rows.append(row)
        print(row, flush=True)
    summary = accuracy_summary(rows, skip=lambda name: name.endswith(("_seconds", "_iterations")))
    Results(args, "label_propagation").save(neighbours=args.neighbours, alpha=args.alpha,
                                             rows=rows, summary=summary)


if __name__ == "__main__":
    main()
