"""Local: only metrics travel (short simulation); the server half sends, aggregates and saves nothing."""

from __future__ import annotations

import numpy as np

from conftest import arrays_in, assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import get_algorithm, reply
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.runtime.simulate import simulate

SHORT = dict(num_rounds=2, eval_round="2", max_steps=3, max_new_tokens=4)

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def private_state(cfg, cid: int) -> dict[str, np.ndarray]:
    return ClientStore(cfg.run_dir / "clients", cid).load(before_round=cfg.num_rounds + 1).arrays


def test_local_sends_nothing(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="local", **SHORT)
    results = simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 12
    assert {k for k, *_ in sent} == {"train", "evaluate"} and len(sent) == 3
    assert list(arrays_in(sent)) == []  # no ArrayRecord either way, in training or evaluation
    for _, _, _, replies in sent:
        assert len(replies) == 4 and all("loss" in r["metrics"] or "rouge1" in r["metrics"] for r in replies.values())
    states = [private_state(cfg, c) for c in range(4)]
    keys = list(states[0])
    assert all(np.abs(s[k]).sum() > 0 for s in states for k in keys if ".lora_B." in k)  # each trained its own
    assert not np.allclose(states[0][keys[1]], states[1][keys[1]])
    assert not (cfg.run_dir / "adapters").exists()  # nothing server-side to save
    assert results["final"]["num_clients"] == 4


# --- server half on hand-built replies (no simulation) --------------------------------------------


def local_server(tmp_path):
    return get_algorithm("local").server(tiny_settings(tmp_path, fed_alg="local"))


def is_empty(message) -> bool:
    return not (message.array_records or message.metric_records or message.config_records)


def test_server_sends_empty_messages_to_train_and_evaluate(tmp_path):
    # Prepare
    server = local_server(tmp_path)

    # Execute
    train = server.configure_train(1, [0, 1, 2, 3])
    evaluate = server.configure_evaluate(1, [2, 3])

    # Assert: the message only says "train (or evaluate) your own adapter"
    assert sorted(train) == [0, 1, 2, 3] and sorted(evaluate) == [2, 3]
    assert all(is_empty(m) for m in [*train.values(), *evaluate.values()])


def test_server_aggregates_nothing_and_still_sends_nothing_afterwards(tmp_path):
    # Prepare: metrics-only replies (what Local clients send), and one that carries an adapter anyway
    server = local_server(tmp_path)
    adapter = {Q_A: np.ones((2, 3), np.float32), Q_B: np.full((4, 2), 5.0, np.float32)}
    replies = {0: reply({"loss": 1.5, "num_samples": 8}), 1: reply({"loss": 0.5, "num_samples": 24}),
               2: reply({"loss": 1.0, "num_samples": 8}, {"adapter": adapter})}

    # Execute
    metrics = server.aggregate_train(1, replies)
    train = server.configure_train(2, [0, 1, 2, 3])
    evaluate = server.configure_evaluate(2, [0, 1, 2, 3])

    # Assert
    assert metrics == {}
    assert all(is_empty(m) for m in [*train.values(), *evaluate.values()])


def test_server_saves_nothing(tmp_path):
    # Prepare
    server = local_server(tmp_path)
    server.aggregate_train(1, {0: reply({"loss": 1.0, "num_samples": 8})})

    # Execute
    arrays, meta = server.state_dict()
    resumed = local_server(tmp_path)
    resumed.load_state_dict(arrays, meta)

    # Assert: no adapter on the server, no checkpoint state, nothing to resume
    assert server.adapters() == {} and resumed.adapters() == {}
    assert (arrays, meta) == ({}, {})
    assert all(is_empty(m) for m in resumed.configure_train(2, [0, 1]).values())
