"""One base model per worker process, and clients that never leak into each other."""

from __future__ import annotations

import json
import os

import numpy as np
from flwr.app import RecordDict

from conftest import tiny_settings
from fedrouter.algorithms.base import ClientRuntime, from_record, get_algorithm, to_record
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
