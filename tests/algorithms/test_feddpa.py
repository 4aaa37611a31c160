"""FedDPA: private local adapter and per-sample mixing (simulation, units); its server half is FedIT's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import arrays_in, assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import from_record, get_algorithm, reply
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.runtime.simulate import simulate

SHORT = dict(num_rounds=2, eval_round="2", max_steps=3, max_new_tokens=4)

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def private_state(cfg, cid: int) -> dict[str, np.ndarray]:
    return ClientStore(cfg.run_dir / "clients", cid).load(before_round=cfg.num_rounds + 1).arrays


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


def test_per_sample_mixing_matches_the_hand_computed_combination(tmp_path):
    from peft.tuners.lora import LoraLayer

    from fedrouter.algorithms.feddpa import GLOBAL, LOCAL, adapter_weights
    from fedrouter.models.backbone import get_backbone
    from fedrouter.steps.generate import generate

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


# --- server half on hand-built replies (no simulation) --------------------------------------------


def lora(a: float, b: float) -> dict[str, np.ndarray]:
    """A rank-2 LoRA state of one 3 -> 4 module: A filled with `a`, B with `b`."""
    return {Q_A: np.full((2, 3), a, np.float32), Q_B: np.full((4, 2), b, np.float32)}


def train_reply(a: float, b: float, num_samples: float):
    """What a FedDPA client sends: its trained global adapter (the local one stays home)."""
    return reply({"loss": 1.0, "local_loss": 2.0, "num_samples": num_samples}, {"adapter": lora(a, b)})


def assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_server_averages_the_global_adapter_like_fedit(tmp_path):
    # Prepare
    feddpa = get_algorithm("feddpa").server(tiny_settings(tmp_path, fed_alg="feddpa"))
    fedit = get_algorithm("fedit").server(tiny_settings(tmp_path, fed_alg="fedit"))
    replies = {0: train_reply(a=1.0, b=2.0, num_samples=1), 1: train_reply(a=5.0, b=6.0, num_samples=3)}

    # Execute
    metrics = feddpa.aggregate_train(1, replies)
    fedit.aggregate_train(1, replies)
    train = feddpa.configure_train(2, [0, 1, 2, 3])
    evaluate = feddpa.configure_evaluate(2, [0, 1, 2, 3])

    # Assert: A = (1 * 1 + 3 * 5) / 4 = 4, B = (1 * 2 + 3 * 6) / 4 = 5, sent to everyone; as FedIT's
    assert metrics == {}
    assert list(feddpa.adapters()) == ["global"]
    assert_state_equal(feddpa.adapters()["global"], lora(4.0, 5.0))
    assert_state_equal(feddpa.adapters()["global"], fedit.adapters()["global"])
    for message in [*train.values(), *evaluate.values()]:
        assert list(message.array_records) == ["adapter"]
        assert_state_equal(from_record(message["adapter"]), lora(4.0, 5.0))


def test_server_sends_nothing_before_any_aggregation_and_roundtrips_its_state(tmp_path):
    # Prepare
    cfg = tiny_settings(tmp_path, fed_alg="feddpa")
    server = get_algorithm("feddpa").server(cfg)
    first = server.configure_train(1, [0, 1])
    server.aggregate_train(1, {0: train_reply(1.0, 2.0, 1), 1: train_reply(5.0, 6.0, 3)})

    # Execute
    arrays, meta = server.state_dict()
    resumed = get_algorithm("feddpa").server(cfg)
    resumed.load_state_dict(dict(arrays), meta)

    # Assert
    assert all(len(m.array_records) == 0 for m in first.values())  # the shared seeded global adapter
    assert_state_equal(from_record(resumed.configure_train(2, [1])[1]["adapter"]), lora(4.0, 5.0))


def test_aggregate_evaluate_reports_the_mixing_weights(tmp_path):
    # Prepare: client 0 is tested on 3 samples of its own tasks and 1 of another; client 1 on 1 of its own
    server = get_algorithm("feddpa").server(tiny_settings(tmp_path, fed_alg="feddpa"))
    scores = {"rouge1": 0.5, "rouge2": 0.25, "rougeL": 0.5, "n": 4.0}
    replies = {0: reply({**scores, "alpha_mean": 0.3, "alpha_own": 0.4, "n_own": 3, "alpha_other": 0.0, "n_other": 1}),
               1: reply({**scores, "n": 1.0, "alpha_mean": 0.1, "alpha_own": 0.25, "n_own": 1})}

    # Execute
    metrics = server.aggregate_evaluate(2, replies)

    # Assert: alpha_mean = mean over clients (0.3 + 0.1) / 2; alpha_own weighted by samples
    # (0.4 * 3 + 0.25 * 1) / 4; alpha_other from client 0 alone
    assert metrics["alpha_mean"] == pytest.approx(0.2)
    assert metrics["alpha_own"] == pytest.approx(0.3625)
    assert metrics["alpha_other"] == pytest.approx(0.0)
    assert metrics["rouge1"] == pytest.approx(0.5) and metrics["num_samples"] == 5.0
