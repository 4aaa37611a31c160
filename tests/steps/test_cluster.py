"""Clustering, mapping, routing and per-cluster aggregation against hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedrouter.algorithms.base import from_record, to_record
from fedrouter.algorithms.fedrouter import FedRouterServer
from fedrouter.config import RunConfig
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


def _setup_reply(centroids, task_counts):
    k = len(centroids)
    rd = RecordDict({"metrics": MetricRecord({"k_local": float(k), "num_samples": 10.0, "local_purity": 1.0,
                                               "local_ari": 1.0}),
                     "meta": ConfigRecord({"k_local": k})})
    rd["centroids"] = to_record({"centroids": np.asarray(centroids, np.float32), "counts": np.full(k, 5),
                                 "task_counts": np.asarray(task_counts)})
    return rd


def test_server_maps_local_centroids_and_averages_within_clusters():
    cfg = RunConfig(num_clients=4, n_clusters="1", global_n_clusters="2")
    srv = FedRouterServer(cfg)
    # clients 0,1 near (0,0) hold task 0; clients 2,3 near (9,9) hold task 1
    replies = {0: _setup_reply([[0, 0]], [[5, 0, 0, 0]]), 1: _setup_reply([[0.2, 0]], [[5, 0, 0, 0]]),
               2: _setup_reply([[9, 9]], [[0, 5, 0, 0]]), 3: _setup_reply([[9, 9.2]], [[0, 5, 0, 0]])}
    srv.aggregate_setup(replies)
    assert srv.mapping[0] == srv.mapping[1] and srv.mapping[2] == srv.mapping[3] and srv.mapping[0] != srv.mapping[2]
    assert srv.diag["global_purity"] == 1.0
    g_a, g_b = srv.mapping[0][0], srv.mapping[2][0]

    # round 1: every client trains local cluster 1 % 1 = 0 from the shared initialisation
    msgs = srv.configure_train(1, [0, 1, 2, 3])
    assert all(m["meta"]["clusters"] == [0] and "adapter_0" not in m.array_records for m in msgs.values())

    def train_reply(value, n):
        rd = RecordDict({"metrics": MetricRecord({"loss": 1.0, "num_samples/0": float(n)})})
        rd["adapter_0"] = to_record({"w.lora_A.weight": np.full(2, value, np.float32)})
        return rd

    srv.aggregate_train(1, {0: train_reply(1.0, 10), 1: train_reply(4.0, 30), 2: train_reply(8.0, 5)})
    # cluster A: (1*10 + 4*30) / 40 = 3.25; cluster B: client 2 alone = 8
    np.testing.assert_allclose(srv.adapters_by_cluster[g_a]["w.lora_A.weight"], [3.25, 3.25])
    np.testing.assert_allclose(srv.adapters_by_cluster[g_b]["w.lora_A.weight"], [8.0, 8.0])
    # round 2: only cluster A has a contributor -> B keeps its adapter
    srv.aggregate_train(2, {0: train_reply(0.0, 10)})
    np.testing.assert_allclose(srv.adapters_by_cluster[g_b]["w.lora_A.weight"], [8.0, 8.0])
    np.testing.assert_allclose(srv.adapters_by_cluster[g_a]["w.lora_A.weight"], [0.0, 0.0])
    # the next round sends each client its cluster's adapter
    msgs = srv.configure_train(3, [3])
    np.testing.assert_allclose(from_record(msgs[3]["adapter_0"])["w.lora_A.weight"], [8.0, 8.0])


@pytest.mark.parametrize("router, expected", [("global", None), ("local", "own")])
def test_evaluate_candidates_per_router(router, expected):
    cfg = RunConfig(num_clients=4, n_clusters="1", global_n_clusters="2", router=router)
    srv = FedRouterServer(cfg)
    srv.aggregate_setup({0: _setup_reply([[0, 0]], [[5, 0, 0, 0]]), 1: _setup_reply([[0, 0.1]], [[5, 0, 0, 0]]),
                         2: _setup_reply([[9, 9]], [[0, 5, 0, 0]]), 3: _setup_reply([[9, 9]], [[0, 5, 0, 0]])})
    msg = srv.configure_evaluate(5, [0])[0]
    cands = list(msg["meta"]["candidates"])
    assert cands == ([0, 1] if expected is None else srv.mapping[0])
    assert from_record(msg["router"])["centroids"].shape == (2, 2)  # centroids travel as arrays


def test_state_roundtrip_for_resume():
    cfg = RunConfig(num_clients=4, n_clusters="1", global_n_clusters="2")
    srv = FedRouterServer(cfg)
    srv.aggregate_setup({i: _setup_reply([[9.0 * (i // 2), 0]], [[5, 0, 0, 0]]) for i in range(4)})
    srv.adapters_by_cluster = {1: {"w.lora_B.weight": np.ones(3, np.float32)}}
    arrays, meta = srv.state_dict()
    other = FedRouterServer(cfg)
    other.load_state_dict(dict(arrays), meta)
    assert other.mapping == srv.mapping
    np.testing.assert_array_equal(other.centroids, srv.centroids)
    np.testing.assert_array_equal(other.adapters_by_cluster[1]["w.lora_B.weight"], np.ones(3))


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
