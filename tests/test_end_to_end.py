"""End-to-end runs through Flower's Simulation Engine on the embedded default (real apps, real Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.simulate import simulate


def zero_shot_rouge1(cfg) -> float:
    """The base model's ROUGE-1 on the same clients' test sets (a LoRA with B = 0 is the base)."""
    from fedrouter.algorithms.base import ClientRuntime, score_groups
    from fedrouter.data.federated import all_client_data
    from fedrouter.models.backbone import get_backbone

    bb = get_backbone(cfg)
    scores = []
    for data in all_client_data(cfg):
        rt = ClientRuntime(cfg, data.client_id, 0, data, bb, store=None)
        s = score_groups(rt, [(bb.init_state(cfg.seed), np.arange(len(data.test)))])
        scores.append(s["rouge1"].mean())
    return float(np.mean(scores))


@pytest.mark.slow  # ~6 rounds of real training; run with -m slow
def test_fedit_rouge_rises_over_zero_shot(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=6, eval_round="3,6", max_steps=10, batch_size=16,
                        max_new_tokens=24, lr=3e-3)
    results = simulate(cfg)
    base = zero_shot_rouge1(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval"]["rouge1"] for r in rows if "eval" in r]
    assert [r["round"] for r in rows] == list(range(1, 7))
    assert results["final"]["rouge1"] > base + 0.05, (base, evals)
    assert evals[-1] >= evals[0] - 0.02  # no collapse between evaluations
    # run folder: resolved config, log, PEFT adapters at evaluation rounds
    assert json.loads((cfg.run_dir / "config.json").read_text())["fed_alg"] == "fedit"
    assert "round 6/6" in (cfg.run_dir / "log.txt").read_text()
    for rnd in (3, 6):
        assert (cfg.run_dir / "adapters" / f"round_{rnd}" / "global" / "adapter_model.safetensors").exists()


def test_fedrouter_recovers_tasks_and_routes_them(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=8, sample_clients=8, num_rounds=1, eval_round="1",
                        max_steps=2, global_n_clusters="4", evaluation_mode="global", max_new_tokens=4)
    results = simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["global_purity"] >= 0.95
    assert results["final"]["routing_accuracy"] >= 0.95
    assert len(set(tuple(v) for v in diag["mapping"].values())) == 4  # four tasks -> four adapters
    assert (cfg.run_dir / "adapters" / "round_1" / "cluster_0" / "adapter_model.safetensors").exists()


def test_dual_split_local_clusters_separate_each_clients_two_tasks(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", split_strategy="dual", num_clients=4, n_clusters="2",
                        global_n_clusters="4", num_rounds=1, eval_round="1", max_steps=1, max_new_tokens=2)
    simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["mean_local_purity"] >= 0.9, diag["local_purity"]


def test_auto_picks_four_global_clusters(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=8, sample_clients=8, global_n_clusters="auto",
                        k_range="2,7", num_rounds=1, eval_round="1", max_steps=1, max_new_tokens=2)
    simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["global_k"] == 4, diag["global_silhouette"]


@pytest.mark.parametrize("alias", ["clustered"])
def test_reference_alias_runs_fedrouter(tmp_path, alias):
    from fedrouter.algorithms.base import get_algorithm

    assert get_algorithm(alias).name == "fedrouter"


def test_failing_client_is_reported_and_left_out(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=3, eval_round="3", max_steps=2, max_new_tokens=4,
                        inject_fault="1:2,2:3:nan")
    simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["failures"] == {}
    assert "injected fault" in rows[1]["failures"]["1"]
    assert "non-finite loss" in rows[2]["failures"]["2"]
    assert "client 1 train failed" in (cfg.run_dir / "log.txt").read_text()


def test_too_many_failures_stop_the_run(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=2, max_steps=1, inject_fault="0:1,1:1,2:1",
                        max_failure_rate=0.5)
    with pytest.raises(Exception, match="3 of 4 clients failed"):
        simulate(cfg)
