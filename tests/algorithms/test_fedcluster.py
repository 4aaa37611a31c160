"""FedCluster: grouping in a short simulation; the server half's FedAvg, grouping and group averages."""

from __future__ import annotations

import json
import logging

import numpy as np
from flwr.app import RecordDict

from conftest import arrays_in, assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import from_record, get_algorithm, reply
from fedrouter.runtime.simulate import simulate

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
V_A = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"
V_B = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"


def test_fedcluster_groups_clients_of_the_same_task(tmp_path, sent):
    # single split, 8 clients: client i holds task i // 2, so the right grouping is {0,1},{2,3},{4,5},{6,7}
    cfg = tiny_settings(tmp_path, fed_alg="fedcluster", num_clients=8, sample_clients=8, n_groups="4", sim_round=1,
                        num_rounds=2, eval_round="2", max_steps=3, max_new_tokens=2)
    simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 24
    groups = {int(c): g for c, g in json.loads((cfg.run_dir / "diagnostics.json").read_text())["groups"].items()}
    assert sorted(groups) == list(range(8))
    assert len(set(groups.values())) == 4
    assert all(groups[2 * t] == groups[2 * t + 1] for t in range(4)), groups
    # round 2 trains each group on its own adapter: equal within a group, different across groups
    round2 = {cid: s for d, kind, rnd, cid, _, s in arrays_in(sent) if d == "down" and kind == "train" and rnd == 2}
    key = next(iter(round2[0]))
    assert np.array_equal(round2[0][key], round2[1][key]) and not np.array_equal(round2[0][key], round2[2][key])
    assert sorted(p.name for p in (cfg.run_dir / "adapters" / "round_2").iterdir()) == [f"group_{g}" for g in range(4)]


def _adapter_reply(b_last: np.ndarray, n: float = 10.0) -> RecordDict:
    state = {"m.layers.0.q.lora_A.weight": np.ones((2, 3), np.float32), "m.layers.0.q.lora_B.weight": np.zeros((3, 2), np.float32),
             "m.layers.1.v.lora_A.weight": np.ones((2, 3), np.float32), "m.layers.1.v.lora_B.weight": b_last.astype(np.float32)}
    return reply({"loss": 1.0, "num_samples": n}, {"adapter": state})


def test_fedcluster_server_groups_places_late_clients_and_resumes(tmp_path, caplog):
    from fedrouter.algorithms.fedcluster import FedClusterServer

    cfg = tiny_settings(tmp_path, fed_alg="fedcluster", num_clients=6, sample_clients=4, n_groups="2", sim_round=1,
                        split_strategy="all")
    rng = np.random.default_rng(0)
    up, down = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    server = FedClusterServer(cfg)
    server.aggregate_train(1, {0: _adapter_reply(up), 1: _adapter_reply(down), 2: _adapter_reply(1.1 * up),
                               3: _adapter_reply(0.9 * down)})
    assert server.groups == {0: 0, 1: 1, 2: 0, 3: 1}
    assert server.diagnostics() == {"groups": {"0": 0, "1": 1, "2": 0, "3": 1}}
    # client 5 first shows up in round 2: it starts from the sim_round adapter (the seeded init here)
    assert len(server.configure_train(2, [0, 5])[5].array_records) == 0
    before = {g: {k: v.copy() for k, v in s.items()} for g, s in server.group_adapters.items()}
    server.aggregate_train(2, {5: _adapter_reply(0.5 * down + 0.01)})
    assert server.groups[5] == 1
    assert all(np.array_equal(before[1][k], v) for k, v in server.group_adapters[1].items())  # not averaged in
    arrays, meta = server.state_dict()
    again = FedClusterServer(cfg)
    again.load_state_dict(dict(arrays), json.loads(json.dumps(meta)))  # meta goes through JSON
    assert again.groups == server.groups and set(again.group_adapters) == {0, 1}
    with caplog.at_level(logging.WARNING, logger="fedrouter.fedcluster"):
        FedClusterServer(cfg.replace(n_groups="1"))
    assert "degenerates to FedIT" in caplog.text


# --- server half on hand-built replies (no simulation) --------------------------------------------

# Two clearly different update directions of the B matrices (the seeded init has B = 0, so before any
# aggregation a client's update is its trained B).
FIRST, LAST = np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float32)
FIRST[0, 0], LAST[3, 1] = 1.0, 1.0


def lora(a: float, b: np.ndarray) -> dict[str, np.ndarray]:
    """Two rank-2 LoRA modules (3 -> 4), model order q then v: A filled with `a`, both B equal to `b`."""
    a_ = np.full((2, 3), a, np.float32)
    return {Q_A: a_, Q_B: b.astype(np.float32), V_A: a_, V_B: b.astype(np.float32)}


def train_reply(a: float, direction: np.ndarray, num_samples: float) -> RecordDict:
    return reply({"loss": 1.0, "num_samples": num_samples}, {"adapter": lora(a, a * direction)})


# Clients 0 and 2 move B along FIRST, clients 1 and 3 along LAST; 2 and 3 trained on 3x the samples.
ROUND_1 = {0: (1.0, FIRST, 1), 1: (2.0, LAST, 1), 2: (5.0, FIRST, 3), 3: (6.0, LAST, 3)}
# Hand-computed: all four (weights 1, 1, 3, 3): A = (1 + 2 + 15 + 18) / 8 = 4.5, B = 2 FIRST + 2.5 LAST;
# group {0, 2}: A = (1 + 15) / 4 = 4, B = 4 FIRST; group {1, 3}: A = (2 + 18) / 4 = 5, B = 5 LAST.
EVERYONE = lora(4.5, 2.0 * FIRST + 2.5 * LAST)
GROUP_02, GROUP_13 = lora(4.0, 4.0 * FIRST), lora(5.0, 5.0 * LAST)


def fedcluster_server(tmp_path, sim_round: int):
    cfg = tiny_settings(tmp_path, fed_alg="fedcluster", num_clients=5, sample_clients=4, n_groups="2",
                        sim_round=sim_round)
    return get_algorithm("fedcluster").server(cfg)


def round_1(server) -> dict[str, float]:
    return server.aggregate_train(1, {c: train_reply(*args) for c, args in ROUND_1.items()})


def sent_state(message) -> dict[str, np.ndarray]:
    return from_record(message["adapter"])


def assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_before_sim_round_the_server_is_plain_fedavg(tmp_path):
    # Prepare
    server = fedcluster_server(tmp_path, sim_round=2)

    # Execute
    metrics = round_1(server)
    train = server.configure_train(2, [0, 1, 2, 3, 4])
    evaluate = server.configure_evaluate(1, [0, 3])

    # Assert: no groups yet, one sample-weighted average for everyone
    assert metrics == {}
    assert server.diagnostics() == {}
    assert list(server.adapters()) == ["global"]
    assert_state_equal(server.adapters()["global"], EVERYONE)
    for message in [*train.values(), *evaluate.values()]:
        assert_state_equal(sent_state(message), EVERYONE)


def test_at_sim_round_the_b_update_directions_form_two_groups_averaged_apart(tmp_path):
    # Prepare
    server = fedcluster_server(tmp_path, sim_round=1)

    # Execute
    metrics = round_1(server)

    # Assert: groups named by their first member; each group FedAvg's its own members
    assert server.diagnostics() == {"groups": {"0": 0, "1": 1, "2": 0, "3": 1}}
    assert metrics == {"contributors/0": 2.0, "contributors/1": 2.0}
    assert sorted(server.adapters()) == ["group_0", "group_1"]
    assert_state_equal(server.adapters()["group_0"], GROUP_02)
    assert_state_equal(server.adapters()["group_1"], GROUP_13)


def test_after_sim_round_each_client_gets_its_groups_adapter(tmp_path):
    # Prepare
    server = fedcluster_server(tmp_path, sim_round=1)
    round_1(server)

    # Execute
    train = server.configure_train(2, [0, 1, 2, 3, 4])
    evaluate = server.configure_evaluate(2, [0, 1, 2, 3, 4])

    # Assert: grouped clients get their group's adapter in both; client 4 (never seen) trains from what
    # everyone received at sim_round (the seeded init: no array) and is evaluated with the global average
    for cid, expected in ((0, GROUP_02), (1, GROUP_13), (2, GROUP_02), (3, GROUP_13)):
        assert_state_equal(sent_state(train[cid]), expected)
        assert_state_equal(sent_state(evaluate[cid]), expected)
    assert len(train[4].array_records) == 0
    assert_state_equal(sent_state(evaluate[4]), EVERYONE)


def test_after_sim_round_groups_average_apart_and_a_group_without_participants_keeps_its_adapter(tmp_path):
    # Prepare
    server = fedcluster_server(tmp_path, sim_round=1)
    round_1(server)

    # Execute: only group 0's members train in round 2
    metrics = server.aggregate_train(2, {0: train_reply(7.0, FIRST, 1), 2: train_reply(9.0, FIRST, 1)})

    # Assert: group 0 = (7 + 9) / 2 = 8; group 1 unchanged
    assert metrics == {"contributors/0": 2.0}
    assert_state_equal(server.adapters()["group_0"], lora(8.0, 8.0 * FIRST))
    assert_state_equal(server.adapters()["group_1"], GROUP_13)
    assert_state_equal(sent_state(server.configure_train(3, [1])[1]), GROUP_13)
    assert_state_equal(sent_state(server.configure_train(3, [2])[2]), lora(8.0, 8.0 * FIRST))


def test_state_dict_roundtrip_keeps_groups_and_their_adapters(tmp_path):
    # Prepare
    server = fedcluster_server(tmp_path, sim_round=1)
    round_1(server)
    arrays, meta = server.state_dict()
    resumed = fedcluster_server(tmp_path, sim_round=1)

    # Execute
    resumed.load_state_dict(dict(arrays), json.loads(json.dumps(meta)))  # meta goes through JSON

    # Assert
    assert resumed.diagnostics() == server.diagnostics()
    for cid, expected in ((0, GROUP_02), (3, GROUP_13)):
        assert_state_equal(sent_state(resumed.configure_train(2, [cid])[cid]), expected)
    assert_state_equal(sent_state(resumed.configure_evaluate(2, [4])[4]), EVERYONE)
