"""Evaluation routers: how a test input picks a global cluster (and so an adapter).

A router is built in three steps that mirror where the data lives:

1. **client** (`client_stats`): from its own training embeddings and local cluster labels, a client
   computes the per-local-cluster statistics the router needs beyond the centroids and sizes every
   FedRouter client already sends (for example the per-cluster sum of squares). Only these aggregates
   leave the client, never a per-sample vector.
2. **server** (`build`): from every client's local clusters (centroids, sizes, statistics) and the
   global clustering, the server builds the routing state sent with each evaluation message.
3. **client** (`scores`): each test embedding gets one score per global cluster (higher = closer);
   the router picks the best candidate.

Routers with `trains = True` (the routing head) are also updated every training round like an adapter:
each sampled client improves the state on its own cluster-labelled embeddings (`client_train`) and the
server averages the results (FedAvg, weighted by samples).

New routers: subclass `Router`, set `name`, `summary` and `sends`, and `register_router(MyRouter())`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fedrouter.utils.lazy import lazy_import

torch = lazy_import("torch")


@dataclass(frozen=True)
class ClientClusters:
    """What the server holds about one client's local clusters after the setup round."""

    centroids: np.ndarray  # k x d
    counts: np.ndarray  # k
    mapping: np.ndarray  # k: the global cluster of each local cluster
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # the router's own per-client statistics


class Router:
    name = ""
    summary = ""
    sends = ""  # what it makes a client send, beyond local centroids and cluster sizes (docs/method.md)
    trains = False

    def client_stats(self, emb: np.ndarray, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
        return {}

    def build(self, centroids: np.ndarray, clients: list[ClientClusters], opts: RouterOptions) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def scores(self, state: dict[str, np.ndarray], emb: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def client_train(self, state: dict[str, np.ndarray], emb: np.ndarray, targets: np.ndarray, seed: int,
                     opts: RouterOptions) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"router {self.name!r} is not trained")


@dataclass(frozen=True)
class RouterOptions:
    shrinkage: float = 0.1  # lda: weight of the scaled identity in the pooled covariance
    head_epochs: int = 2  # head: local epochs per training round
    head_lr: float = 0.05  # head: local learning rate (SGD)
    head_batch: int = 32


ROUTERS: dict[str, Router] = {}


def register_router(router: Router) -> Router:
    if not router.name:
        raise ValueError("a router needs a name")
    ROUTERS[router.name] = router
    return router


def router_named(name: str) -> Router:
    try:
        return ROUTERS[name]
    except KeyError:
        raise ValueError(f"router_model={name!r} is not known; allowed: {', '.join(ROUTERS)}") from None


def _sq_dist(emb: np.ndarray, centers: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    return (emb**2).sum(1)[:, None] - 2.0 * emb @ centers.T + (centers**2).sum(1)[None, :]


def sums_of_squares(emb: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """k x d: per local cluster, the sum of its embeddings' squares (the gaussian's and the head's statistic)."""
    emb = np.asarray(emb, dtype=np.float64)
    return np.stack([(emb[labels == c] ** 2).sum(0) for c in range(k)])


def pooled_moments(centroids: np.ndarray, clients: list[ClientClusters]) -> tuple[np.ndarray, np.ndarray]:
    """Per global cluster: (samples n_g, sample-weighted mean) over its member local clusters."""
    k, d = centroids.shape
    n = np.zeros(k)
    s = np.zeros((k, d))
    for c in clients:
        for lc, g in enumerate(c.mapping):
            n[g] += c.counts[lc]
            s[g] += c.counts[lc] * c.centroids[lc]
    mean = np.where(n[:, None] > 0, s / np.maximum(n, 1)[:, None], centroids)
    return n, mean


class NearestCentroid(Router):
    name = "centroid"
    summary = "nearest global centroid (Euclidean), the paper's router"
    sends = "nothing beyond the local centroids and cluster sizes"

    def build(self, centroids, clients, opts):
        return {"centroids": np.asarray(centroids, dtype=np.float32)}

    def scores(self, state, emb):
        return -_sq_dist(emb, state["centroids"])


class CenteredCosine(Router):
    name = "cosine"
    summary = "nearest global centroid by cosine similarity after subtracting the federated mean embedding"
    sends = "nothing beyond the local centroids and cluster sizes (the mean is their size-weighted average)"

    def build(self, centroids, clients, opts):
        pts = np.concatenate([c.centroids for c in clients])
        w = np.concatenate([c.counts for c in clients]).astype(np.float64)
        mean = (w[:, None] * pts).sum(0) / max(w.sum(), 1.0)
        return {"centroids": np.asarray(centroids, dtype=np.float32), "mean": mean.astype(np.float32)}

    def scores(self, state, emb):
        x = np.asarray(emb, dtype=np.float64) - state["mean"]
        c = np.asarray(state["centroids"], dtype=np.float64) - state["mean"]
        x /= np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
        c /= np.linalg.norm(c, axis=1, keepdims=True).clip(1e-12)
        return x @ c.T


class Prototypes(Router):
    name = "prototypes"
    summary = "nearest member local centroid: each global cluster is represented by all its clients' local centroids"
    sends = ("nothing beyond the local centroids and cluster sizes; the evaluation message carries every "
             "client's local centroids (with their global cluster) instead of the K global ones")

    def build(self, centroids, clients, opts):
        return {"prototypes": np.concatenate([c.centroids for c in clients]).astype(np.float32),
                "owner": np.concatenate([c.mapping for c in clients]).astype(np.int64),
                "k": np.asarray([len(centroids)])}

    def scores(self, state, emb):
        d = -_sq_dist(emb, state["prototypes"])
        out = np.full((len(emb), int(state["k"][0])), -np.inf)
        for g in np.unique(state["owner"]):
            out[:, g] = d[:, state["owner"] == g].max(1)
        return out


class DiagonalGaussian(Router):
    name = "gaussian"
    summary = "log-likelihood under a diagonal Gaussian per global cluster (its mean and per-dimension spread)"
    sends = "the per-local-cluster sum of squares of the embeddings (k x d), besides centroids and sizes"

    def client_stats(self, emb, labels, k):
        return {"sq_sums": sums_of_squares(emb, labels, k)}

    def build(self, centroids, clients, opts):
        n, mean = pooled_moments(centroids, clients)
        sq = np.zeros_like(mean)
        for c in clients:
            for lc, g in enumerate(c.mapping):
                sq[g] += c.stats["sq_sums"][lc]
        var = sq / np.maximum(n, 1)[:, None] - mean**2
        floor = 1e-3 * max(float(np.mean(var[n > 0])), 1e-12) if (n > 0).any() else 1e-6
        return {"mean": mean.astype(np.float32), "var": np.maximum(var, floor).astype(np.float32)}

    def scores(self, state, emb):
        x = np.asarray(emb, dtype=np.float64)
        var = np.asarray(state["var"], dtype=np.float64)
        mean = np.asarray(state["mean"], dtype=np.float64)
        return -0.5 * (((x[:, None, :] - mean[None]) ** 2) / var[None] + np.log(var)[None]).sum(-1)


class SharedCovariance(Router):
    name = "lda"
    summary = ("nearest global centroid after whitening by the pooled within-cluster covariance, shrunk toward "
               "a scaled identity (linear discriminant analysis with equal priors)")
    sends = ("the within-local-cluster scatter matrix summed over the client's clusters (d x d, one per client), "
             "besides centroids and sizes")

    def client_stats(self, emb, labels, k):
        emb = np.asarray(emb, dtype=np.float64)
        scatter = np.zeros((emb.shape[1], emb.shape[1]))
        for c in range(k):
            x = emb[labels == c]
            if len(x):
                x = x - x.mean(0)
                scatter += x.T @ x
        return {"scatter": scatter}

    def build(self, centroids, clients, opts):
        from sklearn.covariance import shrunk_covariance

        n, mean = pooled_moments(centroids, clients)
        d = mean.shape[1]
        scatter = np.zeros((d, d))
        for c in clients:
            scatter += c.stats["scatter"]
            for lc, g in enumerate(c.mapping):  # local clusters spread around their global cluster's mean
                diff = c.centroids[lc] - mean[g]
                scatter += c.counts[lc] * np.outer(diff, diff)
        dof = max(n.sum() - (n > 0).sum(), 1.0)
        cov = scatter / dof
        if not np.trace(cov) > 0:  # no spread at all (one sample per cluster): plain Euclidean distances
            cov = np.eye(d)
        cov = shrunk_covariance(cov, shrinkage=opts.shrinkage)
        vals, vecs = np.linalg.eigh(cov)
        whiten = vecs / np.sqrt(np.maximum(vals, 1e-12))[None, :]  # x @ whiten: unit covariance
        return {"mean": (mean @ whiten).astype(np.float32), "whiten": whiten.astype(np.float32)}

    def scores(self, state, emb):
        return -_sq_dist(np.asarray(emb, dtype=np.float64) @ state["whiten"], state["mean"])


class RoutingHead(Router):
    name = "head"
    summary = ("a linear softmax head over the global clusters, trained with FedAvg on the clients' own "
               "embeddings labelled with their global clusters (inputs standardised by federated statistics)")
    sends = ("the per-local-cluster sum of squares (for the standardisation) at setup, and every training "
             "round the updated head (K x d weights + K biases), like an adapter")
    trains = True

    def client_stats(self, emb, labels, k):
        return {"sq_sums": sums_of_squares(emb, labels, k)}

    def build(self, centroids, clients, opts):
        n, mean = pooled_moments(centroids, clients)
        total = max(n.sum(), 1.0)
        mu = (n[:, None] * mean).sum(0) / total
        sq = sum(c.stats["sq_sums"].sum(0) for c in clients) / total
        scale = np.sqrt(np.maximum(sq - mu**2, 1e-12))
        k, d = centroids.shape
        # Start from the nearest-centroid rule in standardised space (a linear classifier), so an
        # untrained head already routes like `centroid` on standardised inputs.
        z = (mean - mu) / scale
        return {"mu": mu.astype(np.float32), "scale": scale.astype(np.float32),
                "weight": (2.0 * z / d).astype(np.float32), "bias": (-(z**2).sum(1) / d).astype(np.float32)}

    def _logits(self, state, x):
        return x @ state["weight"].T + state["bias"]

    def scores(self, state, emb):
        x = (np.asarray(emb, dtype=np.float32) - state["mu"]) / state["scale"]
        logits = self._logits(state, x).astype(np.float64)
        return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)  # log-probabilities

    def client_train(self, state, emb, targets, seed, opts):
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.from_numpy((np.asarray(emb, dtype=np.float32) - state["mu"]) / state["scale"])
        y = torch.from_numpy(np.asarray(targets, dtype=np.int64))
        head = torch.nn.Linear(x.shape[1], len(state["bias"]))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(state["weight"]))
            head.bias.copy_(torch.from_numpy(state["bias"]))
        optim = torch.optim.SGD(head.parameters(), lr=opts.head_lr)
        for _ in range(opts.head_epochs):
            for idx in torch.randperm(len(x), generator=gen).split(opts.head_batch):
                optim.zero_grad()
                torch.nn.functional.cross_entropy(head(x[idx]), y[idx]).backward()
                optim.step()
        return {**state, "weight": head.weight.detach().numpy().copy(), "bias": head.bias.detach().numpy().copy()}


for _router in (NearestCentroid(), CenteredCosine(), Prototypes(), DiagonalGaussian(), SharedCovariance(),
                RoutingHead()):
    register_router(_router)


def route(router: Router, state: dict[str, np.ndarray], emb: np.ndarray,
          candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(chosen global cluster, its score) for each embedding, among `candidates` if given."""
    s = router.scores(state, emb)
    ids = np.arange(s.shape[1]) if candidates is None else np.asarray(candidates, dtype=np.int64)
    sub = s[:, ids]
    best = sub.argmax(1)
    return ids[best], sub[np.arange(len(sub)), best]
