"""The leak measurement: without DP the server reads each client's tasks off its centroids; with DP at a small
epsilon it learns next to nothing (and the clustering pays for it)."""

from __future__ import annotations

import math

from conftest import tiny_settings
from fedrouter.privacy.attacks import attack


def test_centroids_reveal_tasks_without_dp_and_much_less_with_it(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=16, sample_clients=4, dataset_sample=80,
                        router_model="centroid", num_rounds=5)
    plain, private = attack(cfg, [math.inf, 1.0])
    assert plain["sigma"] == 0 and private["sigma"] > 1
    assert plain["task_inference"] >= 0.9 and plain["global_purity"] >= 0.9  # the built-in tasks are far apart
    assert private["task_inference"] < plain["task_inference"]
    assert abs(private["membership_auc"] - 0.5) < 0.15
    assert private["global_purity"] < plain["global_purity"]
