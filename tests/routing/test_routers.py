"""The routers on hand-built clusters: what each computes from the clients' statistics, and that the
federated statistics give what the pooled data would."""

import numpy as np
import pytest

from fedrouter.routing import ROUTERS, ClientClusters, RouterOptions, route
from fedrouter.routing.routers import pooled_moments
from fedrouter.steps.aggregate import weighted_average


def _clients(data: list[tuple[np.ndarray, int]], names=tuple(ROUTERS)) -> tuple[np.ndarray, list[ClientClusters]]:
    """One local cluster per client: (its points, its global cluster); global centroids = per-cluster means."""
    k = max(g for _, g in data) + 1
    clients = []
    for x, g in data:
        labels = np.zeros(len(x), dtype=np.int64)
        stats = {}
        for n in names:
            stats.update(ROUTERS[n].client_stats(x, labels, 1))
        clients.append(ClientClusters(x.mean(0, keepdims=True), np.array([len(x)]), np.array([g]), stats))
    centroids = np.stack([np.concatenate([x for x, gg in data if gg == g]).mean(0) for g in range(k)])
    return centroids, clients


def _anisotropic(seed: int, n: int = 200, rotate: bool = False):
    """Two clusters whose means differ along dimension 0 by 2, while dimension 1 has a spread of 10: the
    Euclidean nearest centroid is swamped by dimension 1, a router that knows the spread is not. `rotate`
    turns dimensions 0-1 by 45 degrees, so a per-dimension spread no longer separates them."""
    rng = np.random.default_rng(seed)
    scale = np.array([0.3, 10.0, 0.3])
    c = np.sqrt(0.5)
    turn = np.array([[c, -c, 0], [c, c, 0], [0, 0, 1]]) if rotate else np.eye(3)

    def draw(mean):
        return (rng.normal(size=(n, 3)) * scale + mean) @ turn.T

    means = [np.array([0.0, 0.0, 0.0]), np.array([2.0, 0.0, 0.0])]
    train = [(draw(means[g]), g) for g in (0, 1) for _ in range(2)]  # two clients per cluster
    test = np.concatenate([draw(means[0]), draw(means[1])])
    truth = np.repeat([0, 1], n)
    return train, test, truth


@pytest.mark.parametrize("name", list(ROUTERS))
def test_every_router_routes_well_separated_clusters(name):
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 8)) * 10
    train = [(rng.normal(size=(50, 8)) + means[g], g) for g in (0, 1, 2) for _ in range(2)]
    centroids, clients = _clients(train)
    state = ROUTERS[name].build(centroids, clients, RouterOptions())
    test = np.concatenate([rng.normal(size=(30, 8)) + means[g] for g in range(3)])
    chosen, _ = route(ROUTERS[name], state, test)
    assert (chosen == np.repeat([0, 1, 2], 30)).all()
    # candidates restrict the choice
    chosen, _ = route(ROUTERS[name], state, test, candidates=np.array([1, 2]))
    assert set(chosen) <= {1, 2}


def test_routers_that_know_the_spread_beat_the_nearest_centroid_on_anisotropic_clusters():
    train, test, truth = _anisotropic(1)
    centroids, clients = _clients(train)
    acc = {}
    for name in ("centroid", "gaussian", "lda"):
        state = ROUTERS[name].build(centroids, clients, RouterOptions(shrinkage=0.0))
        acc[name] = float((route(ROUTERS[name], state, test)[0] == truth).mean())
    assert acc["centroid"] < 0.7 and acc["gaussian"] > 0.95 and acc["lda"] > 0.95, acc


def test_federated_statistics_equal_the_pooled_data():
    """The Gaussian's variances and LDA's covariance, built from the clients' aggregates, equal what the
    union of every client's points gives."""
    train, _, _ = _anisotropic(2, n=50)
    centroids, clients = _clients(train)
    n, mean = pooled_moments(centroids, clients)
    assert n.tolist() == [100, 100]
    for g in (0, 1):
        pts = np.concatenate([x for x, gg in train if gg == g])
        assert np.allclose(mean[g], pts.mean(0))
        gauss = ROUTERS["gaussian"].build(centroids, clients, RouterOptions())
        assert np.allclose(gauss["var"][g], pts.var(0), rtol=1e-4)
    # LDA without shrinkage whitens by the pooled within-cluster covariance of the union
    lda = ROUTERS["lda"].build(centroids, clients, RouterOptions(shrinkage=0.0))
    resid = np.concatenate([np.concatenate([x for x, gg in train if gg == g]) - mean[g] for g in (0, 1)])
    cov = resid.T @ resid / (len(resid) - 2)
    w = lda["whiten"].astype(np.float64)
    assert np.allclose(w.T @ cov @ w, np.eye(3), atol=1e-3)


def test_client_statistics_are_per_cluster_aggregates_not_samples():
    x = np.random.default_rng(3).normal(size=(40, 5))
    labels = np.repeat([0, 1], 20)
    for name, router in ROUTERS.items():
        for key, value in router.client_stats(x, labels, 2).items():
            assert value.shape in {(2, 5), (5, 5)}, (name, key, value.shape)


def test_prototypes_route_a_cluster_by_its_nearest_member():
    """A global cluster made of two far-apart local clusters: the nearest member, not their mean, decides."""
    a, b, c = np.array([[-10.0, 0]]), np.array([[10.0, 0]]), np.array([[-4.0, 3]])
    clients = [ClientClusters(a, np.array([1]), np.array([0])), ClientClusters(b, np.array([1]), np.array([0])),
               ClientClusters(c, np.array([1]), np.array([1]))]
    centroids = np.array([[0.0, 0], [-4.0, 3]])
    x = np.array([[-9.0, 0.5]])
    assert route(ROUTERS["centroid"], ROUTERS["centroid"].build(centroids, clients, RouterOptions()), x)[0][0] == 1
    assert route(ROUTERS["prototypes"], ROUTERS["prototypes"].build(centroids, clients, RouterOptions()), x)[0][0] == 0


def test_the_routing_head_learns_with_fedavg_from_single_cluster_clients():
    """Each client holds one global cluster only (the label skew of single-task clients); FedAvg of their
    local updates still improves the head on the rotated anisotropic clusters its starting point (the nearest
    centroid in standardised space) gets wrong."""
    train, test, truth = _anisotropic(4, rotate=True)
    centroids, clients = _clients(train)
    head = ROUTERS["head"]
    state = head.build(centroids, clients, RouterOptions())
    before = float((route(head, state, test)[0] == truth).mean())
    opts = RouterOptions(head_epochs=2, head_lr=0.05)
    for rnd in range(10):
        new = [head.client_train(state, x, np.full(len(x), g), 10 * rnd + i, opts) for i, (x, g) in enumerate(train)]
        state = weighted_average(new, [len(x) for x, _ in train])
    after = float((route(head, state, test)[0] == truth).mean())
    assert after > before + 0.2, (before, after)
