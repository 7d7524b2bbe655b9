"""Poisson learning (`latentlab.training.graph`) on a graph whose answer is known."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from latentlab.training.graph import knn_graph, poisson_labels


def test_poisson_learning_carries_one_label_per_cluster_to_the_whole_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])  # a little overlap
    truth = np.repeat(np.arange(3), 300)
    x = centres[truth] + rng.normal(size=(len(truth), 2))
    index = np.array([5, 305, 605])  # one labeled point per cluster
    graph = knn_graph(x, 10)
    assert abs(graph - graph.T).max() == 0, "the graph is not symmetric"
    assert connected_components(graph)[0] == 1, "the clusters must touch for the test to mean much"
    labels, iterations = poisson_labels(graph, index, truth[index], 3)
    assert (labels == truth).mean() > 0.95
    assert iterations < 5000, "the random walk never mixed: the stopping rule did not fire"
    # the classes follow the labels given, not the order of the clusters
    swapped, _ = poisson_labels(graph, index, np.array([2, 0, 1]), 3)
    assert (swapped == np.array([2, 0, 1])[labels]).all()
    # a labeled node keeps its label, even where the labels around it outvote it: nine more
    # labels of cluster 0, and node 14 of cluster 0 labeled 1
    crowd = np.concatenate([index, np.arange(6, 15)])
    given = np.concatenate([truth[index], np.zeros(8, int), [1]])
    with_odd, _ = poisson_labels(graph, crowd, given, 3)
    assert (with_odd[crowd] == given).all() and (with_odd == truth).mean() > 0.95
