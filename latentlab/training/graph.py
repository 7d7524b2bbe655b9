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
    """Poisson learning's class of every node, and the iterations it took."""
    u, iterations = poisson_solution(w, index, labels, n_classes, max_iterations)
    return _classes(u, index, labels), iterations


def _classes(u: np.ndarray, index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each node's largest solution, except that the labeled nodes ``index`` keep their
    ``labels`` (a labeled node among many of another class could lose its own)."""
    classes = u.argmax(axis=1)
    classes[index] = labels
    return classes


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` (flattened) scaled to unit length."""
    x = x.reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def codings_and_probabilities(classifier: keras.Model,
                              images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codings (`CODINGS_LAYER`) and class probabilities of ``images`` (floats), one pass."""
    both = keras.Model(classifier.inputs, [classifier.get_layer(CODINGS_LAYER).output,
                                           classifier.output])
    codings, probabilities = both.predict(images, batch_size=1024, verbose=0)
    return codings, probabilities


def poisson_regression(codings: np.ndarray, labels: np.ndarray, test_codings: np.ndarray,
                       n_classes: int, neighbours: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson learning over the graph of ``codings`` (the labeled images' first, in the order
    of ``labels``, then the unlabeled ones'), and a logistic regression on the codings fitted to
    its classes. Returns the regression's class probabilities of ``test_codings``, the Poisson
    solution u and the classes of the graph's nodes."""
    points = unit_rows(codings)
    index = np.arange(len(labels))
    u, _ = poisson_solution(knn_graph(points, neighbours), index, labels, n_classes)
    classes = _classes(u, index, labels)
    regression = LogisticRegression(max_iter=500, random_state=seed).fit(points, classes)
    probabilities = np.zeros((len(test_codings), n_classes))
    probabilities[:, regression.classes_] = regression.predict_proba(unit_rows(test_codings))
    return probabilities, u, classes


def poisson_probabilities(classifier: keras.Model, x: np.ndarray, y: np.ndarray,
                          unlabeled: np.ndarray, test_x: np.ndarray, n_classes: int,
                          neighbours: int, seed: int) -> np.ndarray:
    """Class probabilities of ``test_x``: the network ``classifier`` (trained on the labeled
    ``x``, ``y``) averaged with the regression on its codings fitted to the Poisson pseudo-labels
    of ``x`` and the images ``unlabeled`` (uint8)."""
    codings, _ = codings_and_probabilities(classifier, np.concatenate([x, as_float(unlabeled)]))
    test_codings, network = codings_and_probabilities(classifier, test_x)
    graph, _, _ = poisson_regression(codings, y, test_codings, n_classes, neighbours, seed)
    return (graph + network) / 2
