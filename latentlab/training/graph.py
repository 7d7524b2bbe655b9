"""Graph-based semi-supervised classification for the label-efficiency curve: Poisson learning
(Calder et al. 2020) over a k-nearest-neighbour graph of a fine-tuned classifier's codings.

The graph joins the labeled images and a seeded sample of the unlabeled train images by their
codings; the labels are the sources of a graph Poisson equation, whose solution gives every
image a class (its pseudo-label). A logistic regression on the codings, fitted to those
pseudo-labels, classifies new images; its class probabilities are averaged with the network's,
so the pair keeps what the network knows where labels are many and the graph's reach where they
are few. This module is given the labels of the labeled subset and nothing else.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors

from latentlab.data.prepared import as_float

CODINGS_LAYER = "head_norm"  # `build_classifier`'s normalised codings, in front of its head


def knn_graph(x: np.ndarray, neighbours: int) -> sp.csr_matrix:
    """Symmetric k-nearest-neighbour weights, Gaussian with each point's own scale (the distance
    to its k-th neighbour), as the GraphLearning package builds them."""
    neighbours = min(neighbours, len(x) - 1)
    distance, index = NearestNeighbors(n_neighbors=neighbours + 1).fit(x).kneighbors(x)
    distance, index = distance[:, 1:], index[:, 1:]  # not the point itself
    weights = np.exp(-4 * distance**2 / np.maximum(distance[:, -1:], 1e-12) ** 2)
    rows = np.repeat(np.arange(len(x)), neighbours)
    w = sp.csr_matrix((weights.ravel(), (rows, index.ravel())), shape=(len(x), len(x)))
    return (w + w.T).tocsr()


def poisson_solution(w: sp.csr_matrix, index: np.ndarray, labels: np.ndarray, n_classes: int,
                     max_iterations: int = 5000) -> tuple[np.ndarray, int]:
    """Poisson learning's solution u (nodes × classes) and the iterations it took. Sources at
    the labeled nodes ``index`` (one-hot minus the labeled mean), u <- u + D^-1 (b - L u),
    stopped when a random walk started on the labeled nodes is within 1/n of its stationary
    law."""
    n = w.shape[0]
    degree = np.maximum(np.asarray(w.sum(axis=1)).ravel(), 1e-12)
    onehot = np.eye(n_classes)[labels]
    sources = np.zeros((n, n_classes))
    sources[index] = onehot - onehot.mean(axis=0)
    laplacian = sp.diags(degree) - w
    walk_step = w.multiply(1 / degree[None, :]).tocsr()
    stationary = degree / degree.sum()
    walk = np.zeros(n)
    walk[index] = 1 / len(index)
    u = np.zeros((n, n_classes))
    for iteration in range(1, max_iterations + 1):
        u += (sources - laplacian @ u) / degree[:, None]
        walk = walk_step @ walk
        if np.abs(walk - stationary).max() <= 1 / n:
            break
    return u, iteration


def poisson_labels(w: sp.csr_matrix, index: np.ndarray, labels: np.ndarray, n_classes: int,
                   max_iterations: int = 5000) -> tuple[np.ndarray, int]:
    """Poisson learning: the class of every node, its largest solution, the labeled nodes
    ``index`` keeping their ``labels``; and the iterations it took."""
    u, iterations = poisson_solution(w, index, labels, n_classes, max_iterations)
    classes = u.argmax(axis=1)
    classes[index] = labels
    return classes, iterations


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` (flattened) scaled to unit length."""
    x = x.reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def poisson_probabilities(classifier: keras.Model, x: np.ndarray, y: np.ndarray,
                          unlabeled: np.ndarray, test_x: np.ndarray, n_classes: int,
                          neighbours: int, seed: int) -> np.ndarray:
    """Class probabilities of ``test_x``: the network ``classifier`` (trained on the labeled
    ``x``, ``y``) averaged with a logistic regression on its codings fitted to the Poisson
    pseudo-labels of ``x`` and the images ``unlabeled`` (uint8)."""
    both = keras.Model(classifier.inputs, [classifier.get_layer(CODINGS_LAYER).output,
                                           classifier.output])
    codings, _ = both.predict(np.concatenate([x, as_float(unlabeled)]), batch_size=1024, verbose=0)
    points = unit_rows(codings)
    pseudo, _ = poisson_labels(knn_graph(points, neighbours), np.arange(len(x)), y, n_classes)
    regression = LogisticRegression(max_iter=500, random_state=seed).fit(points, pseudo)
    test_codings, network = both.predict(test_x, batch_size=1024, verbose=0)
    graph = np.zeros((len(test_x), n_classes))
    graph[:, regression.classes_] = regression.predict_proba(unit_rows(test_codings))
    return (graph + network) / 2
