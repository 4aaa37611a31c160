"""Routed evaluation and generation measured in-process: the baselines, the routing hook, the roofline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_settings
from fedrouter.algorithms.base import algorithms, get_algorithm
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.bench import inference
from fedrouter.bench.inference import mixed_vs_grouped, plain_generate, round_adapter_dirs, routing_of
from fedrouter.data.federated import client_data
from fedrouter.models.backbone import get_backbone
from fedrouter.runtime.simulate import simulate
from fedrouter.steps.generate import generate


def test_plain_generate_baseline_matches_our_generate(tmp_path):
    cfg = tiny_settings(tmp_path, max_new_tokens=6, batch_size_eval=4)
    bb = get_backbone(cfg)
    bb.activate("main")
    bb.set_state(bb.init_state(cfg.seed))
    prompts = [r["instruction"] for r in client_data(cfg, 0).test[:6] + client_data(cfg, 3).test[:4]]
    assert plain_generate(bb.model, bb.tokenizer, prompts, cfg) == generate(bb, prompts, cfg)


def test_mixed_adapter_batches_give_the_grouped_predictions_through_the_client_half(tmp_path):
    # Prepare: a finished FedRouter run whose clients route their test samples to four clusters
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", router="global", test_distribution="all", num_rounds=2,
                        eval_round="2", max_steps=3, max_new_tokens=8, max_eval_size=12, batch_size_eval=5)
    simulate(cfg)
    # Execute: every client's evaluation, groups one after another and then in mixed batches
    result = mixed_vs_grouped(cfg, cfg.run_dir)
    # Assert: several groups per client, the same predictions either way, both timed
    assert result["mean_groups_per_client"] > 1.5
    assert result["same_predictions"] == 1.0 and result["samples"] == 4 * 12
    assert result["grouped_s"] > 0 and result["mixed_s"] > 0 and 0 <= result["auto_chose_mixed_for"] <= 4


def test_roofline_arithmetic_and_measured_limits(monkeypatch):
    limits = inference.machine_limits(copy_mb=16, matmul_n=256, repeats=1)
    assert limits["bandwidth_gb_s"] > 0 and limits["matmul_gflop_s"] > 0
    # a 1,000-parameter fp32 "model": 4,000 bytes per step; at 1 GB/s and 1 GFLOP/s, 10 steps of 8 rows
    assert inference.machine_limits(copy_mb=16, matmul_n=256, repeats=1, dtype=torch.bfloat16)["matmul_dtype"] == "bfloat16"
    asked = []
    monkeypatch.setattr(inference, "machine_limits", lambda dtype: asked.append(dtype) or {
        "bandwidth_gb_s": 1.0, "matmul_gflop_s": 1.0, "threads": 1})
    model = torch.nn.Linear(10, 100, bias=False)
    r = inference.roofline(model, seconds=1e-4, steps=10, row_steps=80)
    assert r["memory_floor_s"] == 10 * 4000 / 1e9 and r["compute_floor_s"] == 2 * 1000 * 80 / 1e9
    assert r["bound"] == "compute" and r["fraction"] == r["compute_floor_s"] / 1e-4
    # a bf16 model: half the bytes per step, and the throughput is measured in bf16
    r = inference.roofline(model.to(torch.bfloat16), seconds=1e-4, steps=10, row_steps=80)
    assert r["memory_floor_s"] == 10 * 2000 / 1e9 and asked == [torch.float32, torch.bfloat16]


def test_routing_comes_from_the_registry_hook_of_a_method_that_routes(tmp_path):
    # Prepare: the proposed method's evaluation message for one client, from its own server half (the
    # paper's router: the one the reference code replays)
    cfg = tiny_settings(tmp_path, router_model="centroid")
    alg = get_algorithm(cfg.fed_alg)
    server = alg.server(cfg)
    server.load_state_dict({"centroids": np.eye(3, dtype=np.float32)},
                           {"mapping": {"0": [2, 0]}, "diag": {"routing_accuracy": {}}})
    content = server.configure_evaluate(1, [0])[0]
    # Execute
    centroids, candidates = routing_of(cfg).router(content)
    # Assert: the message's router, read through the hook; the client's routing read from its store
    np.testing.assert_array_equal(centroids, np.eye(3, dtype=np.float32))
    assert candidates.tolist() == [0, 2] and candidates.dtype == np.int64
    store = ClientStore(tmp_path / "clients", 0)
    store.save_eval(1, {"embeddings": np.zeros((2, 3)), "routed": np.array([2, 0])}, {"tasks": ["a", "b"]})
    assert routing_of(cfg).routed(store, 1).tolist() == [2, 0]
    # a method without the hook is refused with the reason
    without = next(a for a in algorithms() if a.routing is None)
    with pytest.raises(ValueError, match="does not route test samples"):
        routing_of(cfg.replace(fed_alg=without.name))


def test_adapter_folders_by_cluster(tmp_path):
    for name in ("cluster_0", "cluster_3"):
        (tmp_path / "adapters" / "round_2" / name).mkdir(parents=True)
    assert round_adapter_dirs(tmp_path, 2) == {0: tmp_path / "adapters" / "round_2" / "cluster_0",
                                               3: tmp_path / "adapters" / "round_2" / "cluster_3"}
