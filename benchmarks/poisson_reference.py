"""The `finetune` stage's Poisson learning against the GraphLearning package's (Calder et al.,
the method's authors), on the same graph of the pretrained encoder's codings: how many
unlabeled images each labels right, and on how many they agree.

    pip install --target /tmp/graphlearning graphlearning   # builds from source: no wheels
    PYTHONPATH=/tmp/graphlearning uv run python -m benchmarks run poisson_reference [--solver conjugate_gradient]

The graph is the stage's own (`knn_graph`: 10 neighbours, Gaussian weights at each image's own
scale), handed to GraphLearning as its k-nearest-neighbour search's output (its own search
needs `annoy`, which the package does not declare). ``--images`` train images of the prepared
default data, ``--labels`` labeled images a class drawn with each seed. Writes
benchmarks/results/poisson_reference[_NAME].json.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks import Results, command_line


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--solver", default="gradient_descent",
                        choices=["gradient_descent", "conjugate_gradient"],
                        help="GraphLearning's solver (gradient_descent: the paper's iteration)")
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--neighbours", type=int, default=10)
    args = parser.parse_args()
    try:
        import graphlearning as gl
    except ImportError:
        parser.error("graphlearning is not installed: pip install --target DIR graphlearning, "
                     "then PYTHONPATH=DIR")
    from sklearn.neighbors import NearestNeighbors

    from latentlab.data.prepared import as_float, load_split
    from latentlab.precision import load_model
    from latentlab.training.graph import knn_graph, poisson_labels, unit_rows

    x, y = load_split(Path("data/prepared"), "train")
    pick = np.sort(np.random.default_rng(0).choice(len(y), min(args.images, len(y)),
                                                   replace=False))
    x, y = x[pick], y[pick]
    encoder = load_model("models/pretrain/encoder.keras")
    codings = unit_rows(encoder.predict(as_float(x), batch_size=1024, verbose=0))
    results = Results(args, "poisson_reference")
    rows = []
    for per_class in args.labels:
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            index = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                                    for c in np.unique(y)])
            start = time.perf_counter()
            ours, _ = poisson_labels(knn_graph(codings, args.neighbours), index, y[index],
                                     int(y.max()) + 1)
            ours_seconds = time.perf_counter() - start
            start = time.perf_counter()
            k = args.neighbours + 1  # GraphLearning counts each point as its own first neighbour
            distance, neighbour = NearestNeighbors(n_neighbors=k).fit(codings).kneighbors(codings)
            w = gl.weightmatrix.knn(codings, k, knn_data=(neighbour, distance))
            theirs = gl.ssl.poisson(w, solver=args.solver).fit_predict(index, y[index])
            theirs_seconds = time.perf_counter() - start
            unlabeled = np.setdiff1d(np.arange(len(y)), index)
            rows.append({"labels": len(index), "seed": seed,
                         "ours": round(float((ours[unlabeled] == y[unlabeled]).mean()), 4),
                         "graphlearning": round(float((theirs[unlabeled]
                                                       == y[unlabeled]).mean()), 4),
                         "agree": round(float((ours[unlabeled] == theirs[unlabeled]).mean()), 4),
                         "seconds_ours": round(ours_seconds, 1),
                         "seconds_graphlearning": round(theirs_seconds, 1)})
            print(rows[-1], flush=True)
            results.save(solver=args.solver, images=len(y), neighbours=args.neighbours,
                         rows=rows)


if __name__ == "__main__":
    main()
