"""One base model per worker process, clients that never leak into each other, and the benchmark's arithmetic."""

from __future__ import annotations

import json
import os

import numpy as np
from flwr.app import RecordDict

from conftest import tiny_settings
from fedrouter.algorithms.base import ClientRuntime, from_record, get_algorithm, to_record
from fedrouter.bench.runs import overhead, stage_compute
from fedrouter.data.federated import client_data
from fedrouter.data.prompt import encode_example
from fedrouter.models.backbone import Backbone, LoraSpec, get_backbone
from fedrouter.models.loader import ModelSpec
from fedrouter.runtime.simulate import simulate


def test_base_model_loaded_once_per_worker_across_clients_rounds_and_routed_evaluation(tmp_path):
    # Prepare: 8 clients on 2 workers (half the CPUs each), setup + 2 rounds, routed evaluation
    # (global router, all-task test sets) at both rounds
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=8, sample_clients=8, num_rounds=2, eval_round="1,2",
                        max_steps=2, evaluation_mode="global", max_new_tokens=4,
                        client_resources_cpus=max(1, (os.cpu_count() or 2) // 2))
    # Execute
    simulate(cfg)
    # Assert: every message says which process served it and how many base models that process had loaded
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    messages = list(rows[0]["timing"]["setup"]["clients"].values())
    for row in rows:
        messages += list(row["timing"]["train"].values()) + list(row["timing"]["evaluate"].values())
    assert len(messages) == 8 * 5  # setup, 2 x train, 2 x evaluate
    assert {m["load_count"] for m in messages} == {1.0}
    pids = {m["pid"] for m in messages}
    assert len(pids) <= (os.cpu_count() or 2) // cfg.client_resources_cpus < 8  # each worker serves several clients
    for pid in pids:  # the load happened in exactly one message of each worker: its first
        assert sum("time/load" in m for m in messages if m["pid"] == pid) == 1
    routed = [np.load(cfg.run_dir / "clients" / f"client_{c}" / "eval_r2.npz")["routed"] for c in range(8)]
    assert all(len(np.unique(r)) > 1 for r in routed)  # each client's evaluation swapped several adapters


def _train(cfg, backbone, client_id: int, content: RecordDict, store_root) -> dict[str, np.ndarray]:
    from fedrouter.algorithms.client_state import ClientStore

    data = client_data(cfg, client_id)
    examples = [encode_example(backbone.tokenizer, r["instruction"], r["response"], cfg.seq_length) for r in data.train]
    rt = ClientRuntime(cfg, client_id, 2, data, backbone, ClientStore(store_root, client_id), examples)
    return from_record(get_algorithm("fedit").client().train(rt, content)["adapter"])


def test_two_clients_in_one_process_end_with_the_adapters_each_gets_alone(tmp_path, seed):
    # Prepare: a round-2 message (a trained-looking global adapter, B != 0) for clients 0 and 1
    cfg = tiny_settings(tmp_path, fed_alg="fedit", max_steps=3, seed=seed)
    shared = get_backbone(cfg)
    rng = np.random.default_rng(seed)
    start = {k: v + rng.normal(scale=0.02, size=v.shape).astype(np.float32) for k, v in shared.init_state(seed).items()}
    content = RecordDict({"adapter": to_record(start)})
    # Execute: A then B on the process's shared backbone; then each alone on a freshly loaded one
    a_shared = _train(cfg, shared, 0, content, tmp_path / "s")
    b_shared = _train(cfg, shared, 1, content, tmp_path / "s")
    spec, lora = ModelSpec.from_config(cfg), LoraSpec.from_config(cfg)
    b_alone = _train(cfg, Backbone(spec, lora), 1, content, tmp_path / "b")
    a_alone = _train(cfg, Backbone(spec, lora), 0, content, tmp_path / "a")
    # Assert: bitwise equal (same CPU kernels, same seeds, fresh optimizer and adapter per message)
    for key in start:
        np.testing.assert_array_equal(a_shared[key], a_alone[key])
        np.testing.assert_array_equal(b_shared[key], b_alone[key])
    assert any(not np.allclose(a_shared[k], b_shared[k]) for k in start)
    assert any(not np.allclose(a_shared[k], start[k]) for k in start)  # training moved the adapter


def test_plain_generate_baseline_matches_our_generate(tmp_path):
    from fedrouter.bench.inference import plain_generate
    from fedrouter.steps.evaluate import generate

    cfg = tiny_settings(tmp_path, max_new_tokens=6, batch_size_eval=4)
    bb = get_backbone(cfg)
    bb.activate("main")
    bb.set_state(bb.init_state(cfg.seed))
    prompts = [r["instruction"] for r in client_data(cfg, 0).test[:6] + client_data(cfg, 3).test[:4]]
    assert plain_generate(bb.model, bb.tokenizer, prompts, cfg) == generate(bb, prompts, cfg)


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


def test_bench_report_states_the_measured_client_count_and_orders_phases():
    from fedrouter.bench.report import _phase_order, verdicts

    ratios = verdicts({"overhead": 1.1, "routed_eval_speedup": 4.0}, clients=4)
    assert ratios[0]["what"].endswith("(4 clients)") and ratios[0]["pass"]
    assert ratios[1]["name"] == "routed_eval_speedup" and ratios[1]["pass"] is None  # information only
    assert not verdicts({"memory": 1.3}, clients=4)[0]["pass"]  # target <= 1.2
    assert _phase_order({"aggregate": 1.0, "custom": 1.0, "train": 1.0, "load": 1.0}) == [
        "load", "train", "aggregate", "custom"]


def test_mixed_adapter_batches_give_the_grouped_predictions_through_the_client_half(tmp_path):
    # Prepare: a finished FedRouter run whose clients route their test samples to four clusters
    from fedrouter.bench.inference import mixed_vs_grouped

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
    import torch

    from fedrouter.bench import inference

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


def test_the_reference_configuration_command_reports_what_the_reference_was_measured_by(tmp_path):
    # Prepare: the reference preset made tiny (built-in model and data, short answers)
    from conftest import REPO
    from fedrouter.bench.__main__ import main

    out = tmp_path / "bench"
    # Execute
    rc = main(["--reference", str(REPO / "configs" / "bench-reference.toml"), "--out", str(out),
               "model_name_or_path=builtin:tiny", "dataset_name=builtin", "dataset_sample=100", "dtype=auto",
               "max_new_tokens=6"])
    # Assert: one load per worker, the adapter message is about one LoRA of the model, every process measured
    assert rc == 0
    r = json.loads((out / "bench_reference.json").read_text())
    assert r["loads"] == len(r["loads_per_worker"]) == len(r["worker_peaks_mb"]) and r["loads_per_worker"][0] == 1
    lora_mb = sum(v.nbytes for v in get_backbone(tiny_settings(tmp_path)).zero_like().values()) / 1e6
    assert lora_mb <= r["adapter_message_mb"] < 1.05 * lora_mb  # the adapter, plus a few small arrays
    assert r["driver_peak_mb"] > 0 and r["roofline"]["decode_steps"] > 0 and 0 < r["roofline"]["fraction"] <= 1
    assert r["config"]["seed"] == 111 and r["config"]["max_data_per_client"] == 40
    assert "| base-model loads |" in (out / "bench_reference.md").read_text()
