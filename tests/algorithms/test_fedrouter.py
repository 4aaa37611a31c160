"""fedrouter.algorithms.fedrouter: FedRouter's settings (the k each rule may try) and the client half's
side of the messages (its setup reply, what it routes an evaluation by). The server half:
test_fedrouter_server.py."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.algorithms.base import SyntheticClient, from_record, meta_of, metrics_of
from fedrouter.algorithms.fedrouter import evaluation_router, synthetic_reply
from fedrouter.algorithms.fedrouter_server import FedRouterServer
from fedrouter.config import RunConfig


@pytest.mark.parametrize("rule, bounds", [("gap", (1, 6)), ("silhouette", (2, 6))])
def test_auto_k_tries_from_one_except_under_the_silhouette(rule, bounds):
    opts = RunConfig.from_mapping(dict(fed_alg="fedrouter", k_range="1,6", k_rule=rule)).alg
    assert opts.k_bounds() == bounds
    assert opts.silhouette_bounds() == (2, 6)  # the diagnostic curve cannot score one cluster


def test_the_setup_reply_carries_centroids_counts_and_router_statistics_only():
    client = SyntheticClient(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32), np.array([3, 5]))
    content = synthetic_reply("setup", None, client)
    arrays = from_record(content["centroids"])
    assert sorted(arrays) == ["centroids", "counts", "router/scatter", "router/sq_sums"]
    assert arrays["router/sq_sums"].shape == (2, 2) and arrays["router/scatter"].shape == (2, 2)
    np.testing.assert_array_equal(arrays["centroids"], client.centroids)
    assert metrics_of(content) == {"k_local": 2, "num_samples": 8} and meta_of(content)["k_local"] == 2


@pytest.mark.parametrize("router", ["local", "global"])
def test_the_client_routes_by_what_the_server_sends(router):
    # Prepare: a server whose two global clusters hold clients 0, 1 and clients 2, 3
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2",
                                      router=router, router_model="centroid", diagnostics=False))
    server = FedRouterServer(cfg)
    server.aggregate_setup({cid: synthetic_reply("setup", None, SyntheticClient(
        np.array([[9.0 * (cid // 2), 0.0]], np.float32), np.array([4]))) for cid in range(4)})
    # Execute
    centroids, candidates = evaluation_router(server.configure_evaluate(1, [2])[2])
    # Assert: the global centroids, and the candidates the router allows (the own cluster, or every one)
    np.testing.assert_array_equal(centroids, server.centroids)
    assert candidates.dtype == np.int64
    assert list(candidates) == (server.mapping[2] if router == "local" else [0, 1])


def test_the_evaluation_message_carries_the_routing_state_and_open_set_thresholds():
    """router_model=lda: the whitened means and the whitening matrix; with router_accept, the thresholds the
    clients' calibration gave (here from two training replies) — none before any calibration."""
    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", num_clients=4, n_clusters="1", global_n_clusters="2",
                                      router="global", router_model="lda", router_accept=0.9, diagnostics=False))
    server = FedRouterServer(cfg)
    server.aggregate_setup({cid: synthetic_reply("setup", None, SyntheticClient(
        np.array([[9.0 * (cid // 2), float(cid)]], np.float32), np.array([4]))) for cid in range(4)})
    msg = server.configure_evaluate(0, [0])[0]
    state = from_record(msg["router"])
    assert sorted(state) == ["mean", "whiten"] and state["whiten"].shape == (2, 2)
    from fedrouter.algorithms.base import reply

    g = server.mapping[0][0]
    server.aggregate_train(1, {0: reply({"loss": 1.0, f"calibration/{g}/score": -2.0, f"calibration/{g}/n": 10}),
                               1: reply({"loss": 1.0, f"calibration/{g}/score": -4.0, f"calibration/{g}/n": 30})})
    assert "open_set" not in msg.array_records  # nothing calibrated before the first training round
    region = from_record(server.configure_evaluate(1, [0])[0]["open_set"])
    np.testing.assert_array_equal(region["centroids"], server.centroids)
    assert region["thresholds"][g] == -3.5 and region["thresholds"][1 - g] == -np.inf


def test_router_settings_are_checked_with_the_allowed_values():
    from fedrouter.validation import validate

    cfg = RunConfig.from_mapping(dict(fed_alg="fedrouter", router_model="nearest", router_accept=1.5, fallback="none",
                                      embedding_layer="top", router_shrinkage=2.0))
    with pytest.raises(Exception) as err:
        validate(cfg)
    text = str(err.value)
    assert "router_model='nearest' is not known; allowed: centroid, cosine, prototypes, gaussian, lda, head" in text
    assert "router_accept=1.5 must be in [0, 1)" in text and "fallback='none' is not known; allowed: base, shared" in text
    assert "embedding_layer='top'" in text and "router_shrinkage=2.0 must be in [0, 1]" in text
