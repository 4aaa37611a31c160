"""The clustering math (k-means, silhouette, nearest centroid, purity, ARI) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.steps import cluster


def blobs(centers, n=20, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.concatenate([np.asarray(c) + scale * rng.standard_normal((n, len(c))) for c in centers])
    return pts, np.repeat(np.arange(len(centers)), n)


def test_kmeans_recovers_blobs_and_is_seeded():
    pts, truth = blobs([[0, 0], [5, 5], [0, 5]])
    cents, labels = cluster.kmeans(pts, 3, seed=1)
    table = cluster.contingency(labels, truth.astype(str), ["0", "1", "2"], 3)
    assert cluster.purity(table) == 1.0 and cluster.ari(table) == pytest.approx(1.0)
    np.testing.assert_array_equal(labels, cluster.kmeans(pts, 3, seed=1)[1])
    with pytest.raises(ValueError, match="k=100"):
        cluster.kmeans(pts, 100, seed=1)


def test_choose_k_by_silhouette():
    pts, _ = blobs([[0, 0], [6, 0], [0, 6], [6, 6]])
    k, scores = cluster.choose_k(pts, 2, 7, seed=0)
    assert k == 4 and set(scores) == set(range(2, 8)) and max(scores.values()) == scores[4]


def test_nearest_with_and_without_candidates():
    cents = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = np.array([[1.0, 1.0], [9.0, 1.0], [1.0, 9.0]])
    np.testing.assert_array_equal(cluster.nearest(pts, cents), [0, 1, 2])
    # local router: only clusters 1 and 2 are candidates -> (1,1) goes to the nearer of those
    np.testing.assert_array_equal(cluster.nearest(pts, cents, candidates=[1, 2]), [1, 1, 2])


def test_purity_and_ari_from_contingency():
    table = np.array([[3, 1], [0, 4]])  # 8 points, 7 in their cluster's majority class
    assert cluster.purity(table) == pytest.approx(7 / 8)
    from sklearn.metrics import adjusted_rand_score

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    classes = [0, 0, 0, 1, 1, 1, 1, 1]
    assert cluster.ari(table) == pytest.approx(adjusted_rand_score(labels, classes))
    np.testing.assert_array_equal(cluster.dominant(np.array([[0, 2], [0, 0]])), [1, -1])


def test_silhouette_curve_with_shared_distances_equals_per_k_silhouette(seed):
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    pts = np.concatenate([rng.normal(c, 0.3, size=(30, 5)) for c in (0.0, 3.0, 6.0)])
    curve = cluster.silhouette_curve(pts, 2, 5, seed=seed)
    for k, score in curve.items():
        expected = silhouette_score(pts, cluster.kmeans(pts, k, seed)[1])  # distances recomputed for this k
        assert score == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_kmeans_reuses_an_identical_fit_and_hands_out_copies(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(50, 4))
    cents, labels = cluster.kmeans(pts, 3, seed)
    cents[:] = 0.0  # a caller mutating its result must not change the next caller's
    again, labels_again = cluster.kmeans(pts.copy(), 3, seed)
    fresh = cluster.KMeans(n_clusters=3, n_init=10, random_state=seed).fit(pts.astype(np.float32))
    np.testing.assert_array_equal(labels_again, fresh.labels_)
    np.testing.assert_array_equal(again, fresh.cluster_centers_.astype(np.float32))
