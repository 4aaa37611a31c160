"""The server at scale: the proposed method's server half loaded with synthetic clients whose replies
its own client half builds (the registry's synthetic_reply hook)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import message_violations
from fedrouter.algorithms.base import SyntheticClient, get_algorithm
from fedrouter.bench.server import llama_qv_lora_shapes, server_scale
from fedrouter.config import RunConfig


def test_server_scale_clusters_and_aggregates_every_synthetic_client():
    shapes = {"x.lora_A.weight": (2, 8), "x.lora_B.weight": (8, 2)}
    r = server_scale(shapes, num_clients=24, k_local=2, dim=16)
    assert (r["clients"], r["centroids_per_client"], r["dim"], r["adapter_params"]) == (24, 2, 16, 32)
    assert r["global_clustering_s"] > 0 and r["aggregation_s"] > 0
    # timed apart from the aggregation that includes it, so on a loaded machine it may exceed it: only its sign
    assert r["of_which_deserialization_s"] >= 0
    assert r["clustering_and_aggregation_s"] == pytest.approx(r["total_s"] - r["of_which_deserialization_s"])


def test_synthetic_replies_are_what_the_client_half_may_send():
    # Prepare: the proposed method's own messages for two clients (setup, then round 1 after it)
    cfg = RunConfig.from_mapping({"num_clients": 2, "n_clusters": 2, "global_n_clusters": 2, "diagnostics": False})
    alg = get_algorithm(cfg.fed_alg)
    server = alg.server(cfg)
    rng = np.random.default_rng(0)
    lora = {"x.lora_A.weight": (2, 8), "x.lora_B.weight": (8, 2)}
    adapter = {k: rng.normal(size=s).astype(np.float32) for k, s in lora.items()}
    clients = {c: SyntheticClient(rng.normal(size=(2, 4)).astype(np.float32), np.array([3, 5]), adapter) for c in (0, 1)}
    # Execute
    setup = {c: alg.synthetic_reply("setup", m, clients[c]) for c, m in (server.configure_setup([0, 1]) or {}).items()}
    server.aggregate_setup(setup)
    train = {c: alg.synthetic_reply("train", m, clients[c]) for c, m in server.configure_train(1, [0, 1]).items()}
    server.aggregate_train(1, train)
    # Assert: each reply passes the check of what the method's client may send, and the server took them
    for kind, replies in (("setup", setup), ("train", train)):
        for content in replies.values():
            assert message_violations(cfg.fed_alg, kind, content, lora) == []
    assert len(server.adapters()) >= 1
    with pytest.raises(ValueError, match="no synthetic reply"):
        alg.synthetic_reply("evaluate", setup[0], clients[0])


def test_llama_qv_shapes_count_its_lora_parameters():
    shapes = llama_qv_lora_shapes()
    assert len(shapes) == 16 * 2 * 2 and sum(int(np.prod(s)) for s in shapes.values()) == 851_968
