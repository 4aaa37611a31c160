"""Open-set routing: the calibration a client sends, the thresholds the server makes of it, and the
routing table the server reports."""

import numpy as np

from fedrouter.algorithms.fedrouter_server import routing_table
from fedrouter.routing import ROUTERS, ClientClusters, RouterOptions, accepted, client_calibration, route, thresholds


def test_calibration_accepts_the_target_share_and_rejects_far_inputs():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0, 0], [8.0, 0, 0]])
    xs = [rng.normal(size=(400, 3)) + means[g] for g in (0, 1)]
    cals = [client_calibration(means, x, np.full(len(x), g), 0.9) for g, x in enumerate(xs)]
    assert [sorted(c) for c in cals] == [[0], [1]] and all(c[g][1] == 400 for g, c in enumerate(cals))
    limits = thresholds(cals, 2)
    # whatever router chose the cluster, the region is the ball around its centroid
    router = ROUTERS["lda"]
    clients = [ClientClusters(x.mean(0, keepdims=True), np.array([len(x)]), np.array([g]),
                              router.client_stats(x, np.zeros(len(x), dtype=np.int64), 1)) for g, x in enumerate(xs)]
    state = router.build(means, clients, RouterOptions())
    fresh = np.concatenate([rng.normal(size=(2000, 3)) + means[g] for g in (0, 1)])
    share = accepted(means, fresh, route(router, state, fresh)[0], limits).mean()
    assert 0.85 < share < 0.95  # the target, on new draws of the same clusters
    far = rng.normal(size=(100, 3)) + np.array([4.0, 30, 0])
    assert not accepted(means, far, route(router, state, far)[0], limits).any()


def test_thresholds_weight_clients_by_their_inputs_and_leave_uncalibrated_clusters_open():
    limits = thresholds([{0: (-2.0, 10)}, {0: (-4.0, 30)}], 2)
    assert limits[0] == -3.5 and limits[1] == -np.inf


def test_the_routing_table_counts_right_wrong_rejected_and_caught():
    task_table = np.array([[50, 0, 0], [0, 40, 0]])  # cluster 0 trained on qqp, 1 on samsum; webnlg unseen
    counts = {("qqp", "0"): 18, ("qqp", "1"): 1, ("qqp", "fallback"): 1, ("samsum", "1"): 20,
              ("webnlg", "0"): 3, ("webnlg", "fallback"): 7}
    t = routing_table(counts, task_table, ["qqp", "samsum", "webnlg"])
    assert t["clusters"] == {"0": "qqp", "1": "samsum"}
    assert t["accuracy"] == 38 / 40 and t["per_task_accuracy"] == {"qqp": 0.9, "samsum": 1.0}
    assert t["seen_rejected"] == 1 / 40 and t["unseen_caught"] == 0.7 and t["unseen_tasks"] == ["webnlg"]
    assert t["table"]["qqp"] == {"0": 18, "1": 1, "fallback": 1}
