"""fedrouter.algorithms.fedrouter_server, FedRouter's server half: global clustering of local centroids,
per-cluster FedAvg, routing, resume."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedrouter.algorithms.base import from_record, get_algorithm, reply, to_record
from fedrouter.algorithms.fedrouter_server import FedRouterServer
from fedrouter.config import RunConfig

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def _setup_reply(centroids, task_counts):
    k = len(centroids)
    rd = RecordDict({"metrics": MetricRecord({"k_local": float(k), "num_samples": 10.0, "local_purity": 1.0,
                                               "local_ari": 1.0}),
                     "meta": ConfigRecord({"k_local": k, "tasks": ["qqp", "gigaword", "samsum", "webnlg"]})})
    d = len(centroids[0])
    # the default router's statistic: no spread within the local clusters
    rd["centroids"] = to_record({"centroids": np.asarray(centroids, np.float32), "counts": np.full(k, 5),
                                 "task_counts": np.asarray(task_counts), "router/scatter": np.zeros((d, d))})
    return rd


def test_server_maps_local_centroids_and_averages_within_clusters():
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2"))
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
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2",
                                         router=router))
    srv = FedRouterServer(cfg)
    srv.aggregate_setup({0: _setup_reply([[0, 0]], [[5, 0, 0, 0]]), 1: _setup_reply([[0, 0.1]], [[5, 0, 0, 0]]),
                         2: _setup_reply([[9, 9]], [[0, 5, 0, 0]]), 3: _setup_reply([[9, 9]], [[0, 5, 0, 0]])})
    msg = srv.configure_evaluate(5, [0])[0]
    cands = list(msg["meta"]["candidates"])
    assert cands == ([0, 1] if expected is None else srv.mapping[0])
    assert from_record(msg["router"])["mean"].shape == (2, 2)  # the default router's (whitened) means travel as arrays


def test_state_roundtrip_for_resume():
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2"))
    srv = FedRouterServer(cfg)
    srv.aggregate_setup({i: _setup_reply([[9.0 * (i // 2), 0]], [[5, 0, 0, 0]]) for i in range(4)})
    srv.adapters_by_cluster = {1: {"w.lora_B.weight": np.ones(3, np.float32)}}
    arrays, meta = srv.state_dict()
    other = FedRouterServer(cfg)
    other.load_state_dict(dict(arrays), meta)
    assert other.mapping == srv.mapping
    np.testing.assert_array_equal(other.centroids, srv.centroids)
    np.testing.assert_array_equal(other.adapters_by_cluster[1]["w.lora_B.weight"], np.ones(3))


# --- two local clusters per client, two global clusters -------------------------------------------


def lora(value: float) -> dict[str, np.ndarray]:
    """A rank-2 LoRA state of one 3 -> 4 module: A filled with `value`, B with -`value`."""
    return {Q_A: np.full((2, 3), value, np.float32), Q_B: np.full((4, 2), -value, np.float32)}


def train_reply(by_cluster: dict[int, tuple[float, float]]) -> RecordDict:
    """A FedRouter training reply: local cluster -> (adapter value, samples trained on)."""
    metrics = {"loss": 1.0, **{f"num_samples/{c}": n for c, (_, n) in by_cluster.items()}}
    return reply(metrics, {f"adapter_{c}": lora(v) for c, (v, _) in by_cluster.items()})


def two_cluster_server(train_all_clusters: bool):
    """Clients 0 and 2 list their local clusters near (0, 0) then near (9, 9); client 1 the other way round."""
    cfg = RunConfig.from_mapping({"fed_alg": "fedrouter", "num_clients": 3, "n_clusters": "2", "global_n_clusters": "2",
                                  "train_all_clusters": train_all_clusters, "router": "global"})
    server = get_algorithm("fedrouter").server(cfg)
    near, far = [5, 0, 0, 0], [0, 5, 0, 0]
    server.aggregate_setup({0: _setup_reply([[0, 0], [9, 9]], [near, far]),
                            1: _setup_reply([[9, 9.1], [0.1, 0]], [far, near]),
                            2: _setup_reply([[0, 0.1], [9.1, 9]], [near, far])})
    return server


def assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_setup_maps_every_local_cluster_to_its_nearest_global_cluster():
    # Prepare, Execute
    server = two_cluster_server(train_all_clusters=True)
    msgs = server.configure_train(1, [0, 1, 2])

    # Assert: the same two global clusters, listed in each client's own order; round 1 trains both
    # local clusters of every client from the shared initialisation (no adapter sent)
    mapping = server.diagnostics()["mapping"]
    g_near, g_far = mapping["0"]
    assert mapping == {"0": [g_near, g_far], "1": [g_far, g_near], "2": [g_near, g_far]}
    assert {g_near, g_far} == {0, 1}
    assert server.diagnostics()["global_purity"] == 1.0
    assert all(list(m["meta"]["clusters"]) == [0, 1] and not m.array_records for m in msgs.values())


def test_two_global_clusters_get_weighted_averages_and_one_without_contributor_keeps_its_adapter():
    # Prepare
    server = two_cluster_server(train_all_clusters=True)
    g_near, g_far = server.diagnostics()["mapping"]["0"]

    # Execute: round 1, clients 0 and 1 train both their local clusters
    first = server.aggregate_train(1, {0: train_reply({0: (1.0, 10), 1: (2.0, 30)}),
                                       1: train_reply({0: (10.0, 10), 1: (5.0, 10)})})
    after_first = server.adapters()
    # round 2: client 2 alone, and only its local cluster 0 (cluster 1 had no samples: no adapter_1)
    second = server.aggregate_train(2, {2: train_reply({0: (7.0, 4)})})

    # Assert: near = (1 * 10 + 5 * 10) / 20 = 3, far = (2 * 30 + 10 * 10) / 40 = 4
    assert first == {f"contributors/{g}": 2.0 for g in sorted((g_near, g_far))}
    assert sorted(after_first) == ["cluster_0", "cluster_1"]
    assert_state_equal(after_first[f"cluster_{g_near}"], lora(3.0))
    assert_state_equal(after_first[f"cluster_{g_far}"], lora(4.0))
    # round 2: near = client 2's adapter alone, far keeps its round-1 adapter
    assert second == {f"contributors/{g_near}": 1.0}
    assert_state_equal(server.adapters()[f"cluster_{g_near}"], lora(7.0))
    assert_state_equal(server.adapters()[f"cluster_{g_far}"], lora(4.0))
    # each client receives, per local cluster, its global cluster's adapter
    msg = server.configure_train(3, [1])[1]
    assert list(msg["meta"]["clusters"]) == [0, 1]
    assert_state_equal(from_record(msg["adapter_0"]), lora(4.0))  # client 1's cluster 0 is the far one
    assert_state_equal(from_record(msg["adapter_1"]), lora(7.0))
    evaluate = server.configure_evaluate(3, [2])[2]
    assert list(evaluate["meta"]["candidates"]) == [0, 1]
    assert_state_equal(from_record(evaluate[f"adapter_{g_near}"]), lora(7.0))
    assert_state_equal(from_record(evaluate[f"adapter_{g_far}"]), lora(4.0))


def test_one_local_cluster_per_round_in_turn_and_only_that_one_is_aggregated():
    # Prepare
    server = two_cluster_server(train_all_clusters=False)
    g_near, g_far = server.diagnostics()["mapping"]["0"]

    # Execute: round 1 schedules local cluster 1 % 2 = 1; client 0 also sends an unscheduled adapter_0
    scheduled = [list(server.configure_train(r, [0])[0]["meta"]["clusters"]) for r in (1, 2, 3)]
    metrics = server.aggregate_train(1, {0: train_reply({0: (100.0, 50), 1: (3.0, 5)}),
                                         1: train_reply({1: (6.0, 10)})})

    # Assert: client 0's cluster 1 and client 1's cluster 1 are far and near: one contributor each
    assert scheduled == [[1], [0], [1]]
    assert metrics == {f"contributors/{g}": 1.0 for g in sorted((g_near, g_far))}
    assert_state_equal(server.adapters()[f"cluster_{g_far}"], lora(3.0))
    assert_state_equal(server.adapters()[f"cluster_{g_near}"], lora(6.0))
    # round 2 schedules local cluster 0: near for client 0, far for client 1
    msgs = server.configure_train(2, [0, 1])
    assert_state_equal(from_record(msgs[0]["adapter_0"]), lora(6.0))
    assert_state_equal(from_record(msgs[1]["adapter_0"]), lora(3.0))
    assert all(list(m.array_records) == ["adapter_0"] for m in msgs.values())


def test_unseen_task_samples_are_tabled_not_counted_as_routing_errors():
    # Prepare: two global clusters trained on qqp (clients 0, 1) and gigaword (clients 2, 3); samsum
    # has test samples but no client trained on it
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2"))
    srv = FedRouterServer(cfg)
    srv.aggregate_setup({0: _setup_reply([[0, 0]], [[5, 0, 0, 0]]), 1: _setup_reply([[0.2, 0]], [[5, 0, 0, 0]]),
                         2: _setup_reply([[9, 9]], [[0, 5, 0, 0]]), 3: _setup_reply([[9, 9.2]], [[0, 5, 0, 0]])})
    g_qqp, g_giga = srv.mapping[0][0], srv.mapping[2][0]

    def eval_reply(routes: dict[str, float]):
        return reply({"n": 4.0, "rouge1": 0.5, "rouge2": 0.1, "rougeL": 0.4, **routes})

    # Execute: qqp 3 right + 1 wrong, gigaword 2 right; samsum 2 to the qqp cluster, 1 to gigaword's
    out = srv.aggregate_evaluate(5, {
        0: eval_reply({f"route/{g_qqp}/qqp": 3.0, f"route/{g_giga}/qqp": 1.0, f"route/{g_qqp}/samsum": 2.0}),
        1: eval_reply({f"route/{g_giga}/gigaword": 2.0, f"route/{g_giga}/samsum": 1.0}),
    })
    # Assert: accuracy over seen-task samples only (5 of 6); where the unseen task went, per cluster
    assert out["routing_accuracy"] == pytest.approx(5 / 6)
    assert srv.diagnostics()["unseen_routing"]["5"] == {"samsum": {str(g_qqp): 2.0, str(g_giga): 1.0}}
