"""Clustering math on arrays: k-means, silhouette choice of k, nearest centroid, purity and ARI."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, pairwise_distances, silhouette_score

from fedrouter.utils.timing import timed

# k-means is a pure function of (points, k, seed): the fit that the silhouette curve made at the
# chosen k is reused by the final clustering instead of being computed a second time.
_FITS: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_FITS_KEPT = 16
# The silhouette curve shares one n x n distance matrix across its k's up to this many points
# (8192^2 float64 = 512 MiB); beyond it scikit-learn recomputes distances for each k.
SHARED_DISTANCES_MAX_POINTS = 8192


@timed("cluster")
def kmeans(points: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids k x d, labels n) from scikit-learn's k-means (k-means++, 10 restarts), in float32
    like the embeddings themselves (a quarter less time than float64 at 4,000 x 2,048 points)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    if not 1 <= k <= len(points):
        raise ValueError(f"k={k} must be between 1 and the number of points ({len(points)})")
    key = (hashlib.blake2b(points.tobytes(), digest_size=16).digest(), points.shape, k, seed)
    if key not in _FITS:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points)
        _FITS[key] = (km.cluster_centers_.astype(np.float32), km.labels_.astype(np.int64))
        while len(_FITS) > _FITS_KEPT:
            _FITS.popitem(last=False)
    centroids, labels = _FITS[key]
    return centroids.copy(), labels.copy()


def forget_fits() -> None:
    """Drop the remembered k-means fits (a benchmark times each run from scratch)."""
    _FITS.clear()


@timed("cluster")
def silhouette_curve(points: np.ndarray, k_min: int, k_max: int, seed: int) -> dict[int, float]:
    """Silhouette score of k-means for every k in [k_min, k_max] (the paper's Figures 7 and 8).

    Silhouette needs 2 <= k <= n - 1; the range is clipped to that (empty when n < 3)."""
    points = np.asarray(points, dtype=np.float64)
    ks = range(max(2, k_min), min(k_max, len(points) - 1) + 1)
    if len(ks) > 1 and len(points) <= SHARED_DISTANCES_MAX_POINTS:
        # Distances between points do not depend on k: computed once, not once per k.
        features, metric = pairwise_distances(points), "precomputed"
    else:
        features, metric = points, "euclidean"
    scores: dict[int, float] = {}
    for k in ks:
        _, labels = kmeans(points, k, seed)
        scores[k] = float(silhouette_score(features, labels, metric=metric)) if len(set(labels)) > 1 else -1.0
    return scores


@timed("cluster")
def choose_k(points: np.ndarray, k_min: int, k_max: int, seed: int) -> tuple[int, dict[int, float]]:
    """The k in [k_min, k_max] with the best silhouette score (ties: the smaller k); (1, {}) when
    there are too few points to score any k. Returns (k, {k: score})."""
    scores = silhouette_curve(points, k_min, k_max, seed)
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: (scores[k], -k)), scores


@timed("route")
def nearest(points: np.ndarray, centroids: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) for each point, among `candidates` if given."""
    points = np.asarray(points, dtype=np.float64)
    cents = np.asarray(centroids, dtype=np.float64)
    ids = np.arange(len(cents)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    d2 = ((points[:, None, :] - cents[ids][None, :, :]) ** 2).sum(-1)
    return ids[d2.argmin(axis=1)]


def contingency(clusters: np.ndarray, classes: list[str] | np.ndarray, class_names: list[str], k: int) -> np.ndarray:
    """k x len(class_names) table of counts: cluster id vs true class."""
    table = np.zeros((k, len(class_names)), dtype=np.int64)
    index = {c: i for i, c in enumerate(class_names)}
    for c, t in zip(clusters, classes, strict=True):
        table[int(c), index[t]] += 1
    return table


def purity(table: np.ndarray) -> float:
    """Share of points whose cluster's majority class is their own class."""
    total = table.sum()
    return float(table.max(axis=1).sum() / total) if total else 0.0


def ari(table: np.ndarray) -> float:
    """Adjusted Rand index from a contingency table (it depends on the table alone), so the server
    can compute it from per-cluster counts without per-sample labels."""
    rows, cols = np.nonzero(table)
    counts = table[rows, cols]
    return float(adjusted_rand_score(np.repeat(rows, counts), np.repeat(cols, counts)))


def dominant(table: np.ndarray) -> np.ndarray:
    """Majority class of each cluster (-1 for an empty cluster)."""
    return np.where(table.sum(axis=1) > 0, table.argmax(axis=1), -1)
