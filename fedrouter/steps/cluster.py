"""Clustering math on arrays: k-means, the choice of k (gap statistic or silhouette), nearest centroid,
purity and ARI.

scikit-learn and threadpoolctl are imported by the functions that use them: importing the algorithms
(to list their settings) must not pay for scikit-learn, scipy and pandas."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np

from fedrouter.utils import process_state
from fedrouter.utils.timing import timed

# k-means is a pure function of (points, k, seed): the fit that the silhouette curve made at the
# chosen k is reused by the final clustering instead of being computed a second time.
_FITS: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = process_state.register(f"{__name__}._FITS", OrderedDict())
_FITS_KEPT = 16
# The silhouette curve shares one n x n distance matrix across its k's up to this many points
# (8192^2 float64 = 512 MiB); beyond it scikit-learn recomputes distances for each k.
SHARED_DISTANCES_MAX_POINTS = 8192


@timed("cluster")
def kmeans(points: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids k x d, labels n) from scikit-learn's k-means (k-means++, 10 restarts), in float32
    like the embeddings themselves (half the memory traffic of float64; docs/benchmark.md)."""
    from sklearn.cluster import KMeans

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


@timed("cluster")
def silhouette_curve(points: np.ndarray, k_min: int, k_max: int, seed: int) -> dict[int, float]:
    """Silhouette score of k-means for every k in [k_min, k_max] (the paper's Figures 7 and 8).

    Silhouette needs 2 <= k <= n - 1; the range is clipped to that (empty when n < 3)."""
    from sklearn.metrics import pairwise_distances, silhouette_score

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


# auto's rules for the number of clusters (docs/auto_k.md): the gap statistic can answer k = 1 and splits
# the real four-task clients right; silhouette (the paper's) needs k >= 2 and under-splits them.
K_RULES = ("gap", "silhouette")
GAP_REFERENCES = 10  # reference data sets per k (B in Tibshirani et al.)
# A k further out whose gap is this much higher (log of the within-cluster dispersion ratio: half the
# dispersion) overrides the first local maximum; see gap_choice.
GAP_LOOK_AHEAD = math.log(2)
GAP_ONE_THREAD_MAX_VALUES = 1_000_000  # points x dimensions up to which the curve runs on one thread


@timed("cluster")
def gap_curve(points: np.ndarray, k_min: int, k_max: int, seed: int,
              references: int = GAP_REFERENCES) -> tuple[dict[int, float], dict[int, float]]:
    """Gap statistic (Tibshirani, Walther & Hastie 2001) of k-means for every k in [k_min, k_max], clipped
    to [1, distinct points - 1]: Gap(k) = mean over references of log W_k(reference) - log W_k(points), W_k
    the within-cluster sum of squares, and its standard error s_k = sd * sqrt(1 + 1/B). The reference is
    one Gaussian with the points' variance along each of their principal axes: the same spread with no
    cluster structure. Returns ({k: Gap(k)}, {k: s_k}), both empty when no k can be scored."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = np.asarray(points, dtype=np.float64)
    ks = range(max(1, k_min), min(k_max, len(np.unique(x, axis=0)) - 1) + 1)
    gaps: dict[int, float] = {}
    ses: dict[int, float] = {}
    if not len(ks):
        return gaps, ses
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = centred @ vt.T  # principal coordinates (n x min(n, d)): the reference is drawn in them
    rng = np.random.default_rng(seed)
    refs = [rng.standard_normal(axes.shape) * axes.std(axis=0) for _ in range(references)]
    # Many small k-means fits: one thread each is several times faster than a thread pool (and the same
    # result: scikit-learn's k-means does not depend on the thread count); large inputs keep the pool.
    with threadpool_limits(1 if x.size <= GAP_ONE_THREAD_MAX_VALUES else None):
        for k in ks:
            _, labels = kmeans(x, k, seed)  # the fit at the chosen k is reused by the final clustering
            within = sum(float(((x[labels == j] - x[labels == j].mean(axis=0)) ** 2).sum())
                         for j in np.unique(labels))
            ref = np.log([KMeans(n_clusters=k, n_init=3, random_state=seed).fit(r).inertia_ for r in refs])
            gaps[k] = float(ref.mean() - np.log(within))
            ses[k] = float(ref.std() * math.sqrt(1 + 1 / references))
    return gaps, ses


def gap_choice(gaps: dict[int, float], ses: dict[int, float], k_max: int) -> int:
    """k from a gap curve: the first k <= k_max with Gap(k) >= Gap(k+1) - s_{k+1} (Tibshirani et al.; k_max
    when none), unless a larger k has a gap higher by more than GAP_LOOK_AHEAD: then the smallest k beyond
    the first choice within one standard error of the maximum (Dudoit & Fridlyand's rule). The look-ahead
    is for few, nearly noise-free points such as the server's local centroids, where the gap can stay flat
    for k < the true K (four tasks on a simplex) and then jump."""
    ks = sorted(k for k in gaps if k <= k_max)
    first = next((k for k in ks if k + 1 in gaps and gaps[k] >= gaps[k + 1] - ses[k + 1]), ks[-1])
    top = max(ks, key=lambda k: (gaps[k], -k))
    if gaps[top] - gaps[first] > GAP_LOOK_AHEAD:
        return min(k for k in ks if k > first and gaps[k] >= gaps[top] - ses[top])
    return first


@timed("cluster")
def choose_k(points: np.ndarray, k_min: int, k_max: int, seed: int, rule: str = "gap") -> tuple[int, dict[int, float]]:
    """The number of clusters in [k_min, k_max] by `rule`; (1, {}) when there are too few points to score
    any k. Returns (k, {k: score}).

    gap: the gap statistic (gap_curve, gap_choice); it can answer 1. silhouette (the paper's): the best
    silhouette score, ties to the smaller k; it scores 2 <= k <= n - 1 only."""
    if rule == "silhouette":
        scores = silhouette_curve(points, k_min, k_max, seed)
        if not scores:
            return 1, {}
        return max(scores, key=lambda k: (scores[k], -k)), scores
    if rule == "gap":
        gaps, ses = gap_curve(points, k_min, k_max + 1, seed)  # k_max + 1: the test at k_max needs it
        scores = {k: g for k, g in gaps.items() if k <= k_max}
        if not scores:
            return 1, {}
        return gap_choice(gaps, ses, k_max), scores
    raise ValueError(f"unknown rule {rule!r} for the number of clusters; allowed: {', '.join(K_RULES)}")


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
    from sklearn.metrics import adjusted_rand_score

    rows, cols = np.nonzero(table)
    counts = table[rows, cols]
    return float(adjusted_rand_score(np.repeat(rows, counts), np.repeat(cols, counts)))


def dominant(table: np.ndarray) -> np.ndarray:
    """Majority class of each cluster (-1 for an empty cluster)."""
    return np.where(table.sum(axis=1) > 0, table.argmax(axis=1), -1)
