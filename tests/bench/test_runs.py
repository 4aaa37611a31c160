"""What a run's metrics rows say: stage compute, phase totals, overhead, base-model loads per worker."""

from __future__ import annotations

import numpy as np

from fedrouter.bench.runs import overhead, phase_totals, round_stages, stage_compute, workers


def test_overhead_is_round_wall_over_critical_path_compute():
    # Prepare: one round; worker 1 served clients 0 and 1, worker 2 served client 2
    train = {"0": {"pid": 1, "time_s": 1.5, "time/train": 1.0, "time/data": 0.2},
             "1": {"pid": 1, "time_s": 1.2, "time/train": 1.0},
             "2": {"pid": 2, "time_s": 1.1, "time/train": 1.0}}
    evaluate = {"0": {"pid": 2, "time_s": 0.6, "time/generate": 0.5},
                "1": {"pid": 1, "time_s": 0.4, "time/generate": 0.3}}
    row = {"round": 1, "time_s": 3.5,
           "timing": {"train": train, "evaluate": evaluate, "aggregate_s": 0.1, "train_wall_s": 2.6,
                      "evaluate_wall_s": 0.7}}
    # Execute / Assert: compute = 2.2 (worker 1's train) + 0.1 (aggregate) + 0.5 (worker 2's evaluation)
    assert stage_compute(train) == 2.2
    result = overhead([row])
    assert np.isclose(result["rounds_compute_s"], 2.8)
    assert np.isclose(result["ratio"], 3.5 / 2.8)
    assert np.isclose(result["overhead_s"], 0.7)


def _rows() -> list[dict]:
    setup = {"wall_s": 3.0, "global_cluster_s": 0.2,
             "clients": {"0": {"pid": 1, "load_count": 1, "time/load": 1.0, "time/embed": 0.5},
                         "1": {"pid": 2, "load_count": 1, "time/load": 1.2, "time/cluster": 0.1}}}
    train = {"0": {"pid": 1, "load_count": 1, "time/train": 1.0}, "1": {"pid": 2, "load_count": 2, "time/train": 0.8}}
    return [{"round": 1, "time_s": 2.0, "timing": {"setup": setup, "train": train, "aggregate_s": 0.1,
                                                   "train_wall_s": 1.5}}]


def test_phase_totals_sum_client_phases_over_messages_and_add_the_server_phases():
    totals = phase_totals(_rows())
    assert totals["load"] == 2.2 and totals["train"] == 1.8 and totals["embed"] == 0.5 and totals["cluster"] == 0.1
    assert totals["global_cluster"] == 0.2 and totals["aggregate"] == 0.1 and totals["generate"] == 0.0


def test_setup_is_a_stage_of_its_own_beside_the_ratio():
    stages = round_stages(_rows())
    assert [s["stage"] for s in stages] == ["setup", "round 1"]
    assert np.isclose(stages[0]["compute_s"], 1.5 + 0.2)  # the slower worker's setup + the global clustering
    result = overhead(_rows())
    assert np.isclose(result["rounds_compute_s"], 1.0 + 0.1) and np.isclose(result["setup_overhead_s"], 3.0 - 1.7)


def test_workers_report_the_highest_load_count_each_saw():
    assert workers(_rows()) == {1: 1, 2: 2}
