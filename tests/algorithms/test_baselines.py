"""The paper's baselines (local, fedsa, fedcluster, feddpa): each one's defining property, checked on
real short simulations (messages recorded at the server's Federation.send) plus unit tests of the
pieces that need no simulation (FedDPA's per-sample adapter mixing, FedCluster's grouping)."""

from __future__ import annotations

import json
import logging

import numpy as np
import torch
from flwr.app import RecordDict

from conftest import arrays_in, assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import reply
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.runtime.simulate import simulate

SHORT = dict(num_rounds=2, eval_round="2", max_steps=3, max_new_tokens=4)


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


def test_fedcluster_groups_clients_of_the_same_task(tmp_path, sent):
    # single split, 8 clients: client i holds task i // 2, so the right grouping is {0,1},{2,3},{4,5},{6,7}
    cfg = tiny_settings(tmp_path, fed_alg="fedcluster", num_clients=8, sample_clients=8, global_n_clusters="4", sim_round=1,
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


def test_feddpa_leans_on_local_adapter_for_own_task_and_keeps_it_private(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="feddpa", evaluation_mode="global", **SHORT)  # tested on all tasks
    results = simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 12
    final = results["final"]
    assert final["alpha_own"] > final["alpha_other"] + 0.1, final  # seeds 0-3: about 0.46 vs 0.23-0.24
    assert 0.0 <= final["alpha_other"] and final["alpha_own"] <= 0.5
    exchanged = list(arrays_in(sent))
    assert {name for *_, name, _ in exchanged} == {"adapter"}
    for cid in range(4):
        local = private_state(cfg, cid)
        assert local and any(np.abs(v).sum() > 0 for k, v in local.items() if ".lora_B." in k)
        for *_, state in exchanged:
            assert not any(np.array_equal(state[k], v) for k, v in local.items() if ".lora_B." in k)


# --- units: no simulation ------------------------------------------------------------------------


def test_per_sample_mixing_matches_the_hand_computed_combination(tmp_path):
    from peft.tuners.lora import LoraLayer

    from fedrouter.algorithms.feddpa import GLOBAL, LOCAL, adapter_weights
    from fedrouter.models.backbone import get_backbone
    from fedrouter.steps.evaluate import generate

    cfg = tiny_settings(tmp_path, max_new_tokens=6)
    bb = get_backbone(cfg)
    rng = np.random.default_rng(0)
    shapes = bb.init_state(cfg.seed)
    states = {s: {k: rng.normal(0, 0.2, v.shape).astype(np.float32) for k, v in shapes.items()} for s in (GLOBAL, LOCAL)}
    for slot, state in states.items():
        bb.set_state(state, slot)
    bb.model.eval()
    ids = torch.tensor([bb.tokenizer("the weather is nice today")["input_ids"]] * 3, device=bb.device)
    alpha = torch.tensor([0.0, 1.0, 0.3])
    with torch.no_grad():
        alone = {}
        for slot in (GLOBAL, LOCAL):
            bb.activate(slot)
            alone[slot] = bb.model(input_ids=ids).logits
        bb.activate(GLOBAL, LOCAL)
        with adapter_weights(bb, {LOCAL: alpha, GLOBAL: 1 - alpha}):
            mixed = bb.model(input_ids=ids).logits
        torch.testing.assert_close(mixed[0], alone[GLOBAL][0])  # alpha = 0: global adapter alone
        torch.testing.assert_close(mixed[1], alone[LOCAL][1])  # alpha = 1: local adapter alone
        assert not torch.allclose(mixed[2], alone[GLOBAL][2]) and not torch.allclose(mixed[2], alone[LOCAL][2])
        # one LoRA layer by hand: W0 x + alpha s B_l A_l x + (1 - alpha) s B_g A_g x, row by row
        layer = next(m for m in bb.model.modules() if isinstance(m, LoraLayer))
        x = torch.randn(3, 5, layer.in_features, generator=torch.Generator().manual_seed(0)).to(bb.device)
        with adapter_weights(bb, {LOCAL: alpha, GLOBAL: 1 - alpha}):
            got = layer(x)

        def delta(slot):
            return layer.lora_B[slot](layer.lora_A[slot](x)) * layer.scaling[slot]

        a = alpha.view(3, 1, 1).to(bb.device)
        torch.testing.assert_close(got, layer.base_layer(x) + a * delta(LOCAL) + (1 - a) * delta(GLOBAL))
    # and through KV-cached generation: rows follow their own weights
    prompts = ["the cat sat", "the cat sat"]
    expected = []
    for slot in (GLOBAL, LOCAL):
        bb.activate(slot)
        expected.append(generate(bb, prompts[:1], cfg)[0])
    bb.activate(GLOBAL, LOCAL)
    with adapter_weights(bb, {LOCAL: torch.tensor([0.0, 1.0]), GLOBAL: torch.tensor([1.0, 0.0])}):
        assert generate(bb, prompts, cfg, batch_size=2) == expected
    bb.activate(GLOBAL)


def _adapter_reply(b_last: np.ndarray, n: float = 10.0) -> RecordDict:
    state = {"m.layers.0.q.lora_A.weight": np.ones((2, 3), np.float32), "m.layers.0.q.lora_B.weight": np.zeros((3, 2), np.float32),
             "m.layers.1.v.lora_A.weight": np.ones((2, 3), np.float32), "m.layers.1.v.lora_B.weight": b_last.astype(np.float32)}
    return reply({"loss": 1.0, "num_samples": n}, {"adapter": state})


def test_fedcluster_server_groups_places_late_clients_and_resumes(tmp_path, caplog):
    from fedrouter.algorithms.fedcluster import FedClusterServer

    cfg = tiny_settings(tmp_path, fed_alg="fedcluster", num_clients=6, sample_clients=4, global_n_clusters="2", sim_round=1,
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
        FedClusterServer(cfg.replace(global_n_clusters="1"))
    assert "degenerates to FedIT" in caplog.text
