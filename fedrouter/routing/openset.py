"""Open-set routing: each global cluster accepts only inputs that lie as close to its centroid as its own
training inputs do (a ball around the centroid; the router may be any `router_model`, the acceptance
region is the same). The ball, rather than the router's own score, because it caught the most unseen-task
inputs for the fewest wrongly rejected seen ones among the routers' scores on real tasks (the routing
study in docs/results.md).

Calibration runs on the clients: with the global centroids it received, a client scores its own training
embeddings against the global cluster each one belongs to and sends, per global cluster, the score that
`accept` of them reach (the (1 - accept) quantile) and how many inputs it rests on: two numbers per
cluster, never a per-sample value. The server's threshold for a cluster is the sample-weighted mean of its
clients' quantiles. A test input whose chosen cluster's threshold it does not reach is rejected and goes
to the fallback (the base model, or the shared adapter)."""

from __future__ import annotations

import numpy as np

FALLBACKS = ("base", "shared")


def column_order(column: str) -> tuple[bool, int]:
    """Sort key of a routing-table column (a global cluster id as text, or "fallback"): clusters by id, then
    the fallback."""
    return (column == "fallback", 0 if column == "fallback" else int(column))


def acceptance_scores(centroids: np.ndarray, emb: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """How well each input fits the global cluster it is assigned to: minus its squared Euclidean distance
    to that cluster's centroid (whatever router chose the cluster)."""
    diff = np.asarray(emb, dtype=np.float64) - np.asarray(centroids, dtype=np.float64)[np.asarray(clusters, dtype=np.int64)]
    return -(diff**2).sum(1)


def client_calibration(centroids: np.ndarray, emb: np.ndarray, targets: np.ndarray,
                       accept: float) -> dict[int, tuple[float, int]]:
    """global cluster -> (acceptance score reached by `accept` of this client's training inputs in it, their
    number)."""
    targets = np.asarray(targets, dtype=np.int64)
    own = acceptance_scores(centroids, emb, targets)
    return {int(g): (float(np.quantile(own[targets == g], 1.0 - accept)), int((targets == g).sum()))
            for g in np.unique(targets)}


def thresholds(calibrations: list[dict[int, tuple[float, int]]], k: int) -> np.ndarray:
    """Per global cluster, the sample-weighted mean of the clients' quantiles; -inf (accept all) where no
    client has calibrated it."""
    total = np.zeros(k)
    weight = np.zeros(k)
    for cal in calibrations:
        for g, (q, n) in cal.items():
            total[g] += q * n
            weight[g] += n
    return np.where(weight > 0, total / np.maximum(weight, 1), -np.inf)


def accepted(centroids: np.ndarray, emb: np.ndarray, chosen: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Which inputs their chosen cluster accepts (acceptance score at or above its threshold)."""
    return acceptance_scores(centroids, emb, chosen) >= np.asarray(limits)[np.asarray(chosen, dtype=np.int64)]
