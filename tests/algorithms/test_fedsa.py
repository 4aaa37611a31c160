"""FedSA-LoRA: A shared, B personal (short simulation); the server half averages and sends A alone."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import arrays_in, assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import from_record, get_algorithm, reply
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.runtime.simulate import simulate

SHORT = dict(num_rounds=2, eval_round="2", max_steps=3, max_new_tokens=4)

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
V_A = "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"
V_B = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"


def private_state(cfg, cid: int) -> dict[str, np.ndarray]:
    return ClientStore(cfg.run_dir / "clients", cid).load(before_round=cfg.num_rounds + 1).arrays


def test_fedsa_shares_a_only_and_keeps_b_personal(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="fedsa", **SHORT)
    simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 12
    exchanged = list(arrays_in(sent))
    assert {d for d, *_ in exchanged} == {"down", "up"}
    for direction, kind, rnd, cid, _name, state in exchanged:
        assert state and all(".lora_A." in k for k in state), (direction, kind, rnd, cid, sorted(state)[:2])
    # B: personal, in each client's store, different between clients
    b0, b1 = private_state(cfg, 0), private_state(cfg, 1)
    assert b0 and all(".lora_B." in k for k in b0)
    assert any(not np.allclose(b0[k], b1[k]) for k in b0)
    # A: after aggregation every client holds the same A (the global one the server saved)
    evals = [(cid, s) for d, kind, _, cid, _, s in exchanged if d == "down" and kind == "evaluate"]
    assert len(evals) == 4
    saved = np.load(cfg.run_dir / "checkpoint" / "server_r2.npz")
    for _, a in evals:
        assert all(np.array_equal(a[k], evals[0][1][k]) and np.array_equal(a[k], saved[f"global/{k}"]) for k in a)


# --- server half on hand-built replies (no simulation) --------------------------------------------


def lora(a: float, b: float | None = None) -> dict[str, np.ndarray]:
    """Two rank-2 LoRA modules (3 -> 4): A filled with `a`; B with `b`, or no B keys when b is None."""
    state = {Q_A: np.full((2, 3), a, np.float32), V_A: np.full((2, 3), 2 * a, np.float32)}
    if b is not None:
        state.update({Q_B: np.full((4, 2), b, np.float32), V_B: np.full((4, 2), -b, np.float32)})
    return state


def fedsa_server(tmp_path):
    return get_algorithm("fedsa").server(tiny_settings(tmp_path, fed_alg="fedsa"))


def assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.mark.parametrize("with_b", [False, True], ids=["a-only", "a-and-b"])
def test_aggregate_train_averages_a_only_and_ignores_b(tmp_path, with_b):
    # Prepare: FedSA clients send A alone; B in a reply (a misbehaving client) must not be aggregated
    server = fedsa_server(tmp_path)
    replies = {0: reply({"loss": 1.0, "num_samples": 1}, {"adapter": lora(1.0, 100.0 if with_b else None)}),
               1: reply({"loss": 1.0, "num_samples": 3}, {"adapter": lora(5.0, -100.0 if with_b else None)})}

    # Execute
    metrics = server.aggregate_train(1, replies)

    # Assert: q A = (1 * 1 + 3 * 5) / 4 = 4, v A = (1 * 2 + 3 * 10) / 4 = 8; no B key at all
    assert metrics == {}
    assert list(server.adapters()) == ["global_A"]
    assert_state_equal(server.adapters()["global_A"], lora(4.0))


def test_configure_train_and_evaluate_send_only_the_global_a(tmp_path):
    # Prepare
    server = fedsa_server(tmp_path)
    server.aggregate_train(1, {0: reply({"loss": 1.0, "num_samples": 1}, {"adapter": lora(1.0, 7.0)}),
                               1: reply({"loss": 1.0, "num_samples": 3}, {"adapter": lora(5.0, 9.0)})})

    # Execute
    train = server.configure_train(2, [0, 1, 2, 3])
    evaluate = server.configure_evaluate(2, [0, 1, 2, 3])

    # Assert: everyone receives the same A; B never leaves the server (it never reached it)
    for message in [*train.values(), *evaluate.values()]:
        assert list(message.array_records) == ["adapter"]
        assert_state_equal(from_record(message["adapter"]), lora(4.0))


def test_configure_train_before_any_aggregation_sends_nothing(tmp_path):
    # Prepare
    server = fedsa_server(tmp_path)

    # Execute
    messages = server.configure_train(1, [0, 1])

    # Assert: clients start from the shared seeded A (and B = 0)
    assert all(len(m.array_records) == 0 for m in messages.values())


def test_state_dict_holds_a_only_and_roundtrips(tmp_path):
    # Prepare
    server = fedsa_server(tmp_path)
    server.aggregate_train(1, {0: reply({"loss": 1.0, "num_samples": 1}, {"adapter": lora(1.0, 7.0)}),
                               1: reply({"loss": 1.0, "num_samples": 3}, {"adapter": lora(5.0, 9.0)})})

    # Execute
    arrays, meta = server.state_dict()
    resumed = fedsa_server(tmp_path)
    resumed.load_state_dict(dict(arrays), meta)

    # Assert
    assert len(arrays) == 2 and all(".lora_A." in k for k in arrays)
    assert_state_equal(from_record(resumed.configure_train(2, [3])[3]["adapter"]), lora(4.0))
