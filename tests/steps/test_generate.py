"""Generation: routed groups decoded one after another or in one mixed-adapter batch give the same
predictions, and the choice between them is measured, not fixed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.data.builtin import make_builtin_pool
from fedrouter.models.backbone import get_backbone
from fedrouter.steps import evaluate
from fedrouter.steps.evaluate import generate, mixed_batches_pay


def _distinct_adapters(backbone, n: int) -> list[dict[str, np.ndarray]]:
    """n adapters that change the model's output (random A and B; a fresh B = 0 would be the base)."""
    rng = np.random.default_rng(0)
    out = []
    for j in range(n):
        state = backbone.init_state(seed=j)
        out.append({k: (v if "lora_A" in k else rng.normal(0, 0.5, v.shape).astype(np.float32)) for k, v in state.items()})
    return out


@pytest.mark.parametrize("batch_size", [3, 32])
def test_mixed_adapter_batches_give_the_grouped_predictions(tmp_path, batch_size):
    # Prepare: 24 prompts of the four tasks routed to three adapters
    cfg = tiny_settings(tmp_path, max_new_tokens=12, batch_size_eval=batch_size)
    backbone = get_backbone(cfg)
    prompts = [r["instruction"] for r in make_builtin_pool(6, seed=3)]
    routed = np.arange(len(prompts)) % 3
    states = _distinct_adapters(backbone, 3)
    try:
        # Execute: one routed group after another in the "main" slot, then all in mixed batches
        grouped = [""] * len(prompts)
        backbone.activate("main")
        for j, state in enumerate(states):
            idx = np.flatnonzero(routed == j)
            backbone.set_state(state)
            for i, text in zip(idx, generate(backbone, [prompts[i] for i in idx], cfg), strict=True):
                grouped[i] = text
        for j, state in enumerate(states):
            backbone.set_state(state, slot=f"route_{j}")
        mixed = generate(backbone, prompts, cfg, adapter_names=[f"route_{j}" for j in routed])
    finally:
        backbone.set_state(backbone.init_state(cfg.seed))
    # Assert: the same text for every prompt, and the adapters did matter
    assert mixed == grouped
    backbone.set_state(states[0])
    assert generate(backbone, prompts, cfg) != grouped


def test_the_choice_comes_from_measured_step_times(tmp_path, monkeypatch):
    backbone = get_backbone(tiny_settings(tmp_path))
    assert not mixed_batches_pay(backbone, [5], 8)  # one group: nothing to mix
    # a weight-bound model (a step costs the same at any batch) -> mixing pays
    monkeypatch.setattr(evaluate, "_step_seconds", lambda bb, rows, groups: 1.0)
    assert mixed_batches_pay(backbone, [2, 2, 2, 2], 8)
    # a model whose mixed step costs more than the groups' steps together -> one group after another
    monkeypatch.setattr(evaluate, "_step_seconds", lambda bb, rows, groups: 1.0 if groups == 1 else 5.0)
    assert not mixed_batches_pay(backbone, [2, 2, 2, 2], 8)
    # measured for real (cached per process): a positive time per (rows, groups)
    monkeypatch.undo()
    assert evaluate._step_seconds(backbone, 4, 2) > 0 and (id(backbone), 4, 2) in evaluate._STEP_SECONDS
    backbone.set_state(backbone.zero_like(), slot="route_1")  # slots made while measuring still load in place


def test_decode_steps_are_counted_per_batch(tmp_path):
    cfg = tiny_settings(tmp_path, max_new_tokens=5, batch_size_eval=4)
    backbone = get_backbone(cfg)
    backbone.activate("main")
    backbone.set_state(backbone.init_state(cfg.seed))
    prompts = [r["instruction"] for r in make_builtin_pool(3, seed=1)][:10]  # batches of 4, 4, 2
    evaluate.DECODE_COUNTERS.update(steps=0, row_steps=0)
    generate(backbone, prompts, cfg)
    steps, row_steps = evaluate.DECODE_COUNTERS["steps"], evaluate.DECODE_COUNTERS["row_steps"]
    assert 3 <= steps <= 3 * 5 and steps <= row_steps <= 4 * steps


def test_row_adapters_match_peft_mixed_batches(tmp_path):
    """The batched per-row LoRA (one pair of batched matmuls per layer) gives PEFT's mixed-adapter
    logits, leaves the model as it was, and hands layers it does not cover to PEFT."""
    import torch

    cfg = tiny_settings(tmp_path)
    backbone = get_backbone(cfg)
    model = backbone.model
    for j, state in enumerate(_distinct_adapters(backbone, 3)):
        backbone.set_state(state, slot=f"route_{j}")
    backbone.activate("main")
    model.eval()
    ids = torch.randint(5, 50, (5, 7))
    names = ["route_2", "route_0", "route_1", "route_0", "route_2"]
    with torch.inference_mode():
        peft_logits = model(input_ids=ids, adapter_names=names).logits
        with evaluate.row_adapters(model, names) as extra:
            assert extra == {}  # the batched path needs no PEFT kwargs
            ours = model(input_ids=ids).logits
        after = model(input_ids=ids).logits  # hooks removed, adapters enabled again: the "main" slot
        main_only = model(input_ids=ids, adapter_names=["main"] * 5).logits
    assert torch.allclose(ours, peft_logits, atol=1e-5) and not torch.allclose(ours, after, atol=1e-3)
    assert torch.allclose(after, main_only, atol=1e-6)
    # a layer it does not cover (in training mode, where dropout applies) -> PEFT's own path
    model.train()
    try:
        with evaluate.row_adapters(model, names) as extra:
            assert extra == {"adapter_names": names}
    finally:
        model.eval()
        backbone.set_state(backbone.init_state(cfg.seed))
