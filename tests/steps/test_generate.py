"""Generation: routed groups decoded one after another or in one mixed-adapter batch give the same
predictions, and every decode step is counted."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import distinct_adapters, tiny_settings
from fedrouter.data.builtin import make_builtin_pool
from fedrouter.models.backbone import get_backbone
from fedrouter.steps.generate import DECODE_COUNTERS, generate
from fedrouter.utils import process_state


@pytest.mark.parametrize("batch_size", [3, 32])
def test_mixed_adapter_batches_give_the_grouped_predictions(tmp_path, batch_size):
    # Prepare: 24 prompts of the four tasks routed to three adapters
    cfg = tiny_settings(tmp_path, max_new_tokens=12, batch_size_eval=batch_size)
    backbone = get_backbone(cfg)
    prompts = [r["instruction"] for r in make_builtin_pool(6, seed=3)]
    routed = np.arange(len(prompts)) % 3
    states = distinct_adapters(backbone, 3)
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


def test_decode_steps_are_counted_per_batch(tmp_path):
    cfg = tiny_settings(tmp_path, max_new_tokens=5, batch_size_eval=4)
    backbone = get_backbone(cfg)
    backbone.activate("main")
    backbone.set_state(backbone.init_state(cfg.seed))
    prompts = [r["instruction"] for r in make_builtin_pool(3, seed=1)][:10]  # batches of 4, 4, 2
    process_state.clear(DECODE_COUNTERS)
    generate(backbone, prompts, cfg)
    steps, row_steps = DECODE_COUNTERS["steps"], DECODE_COUNTERS["row_steps"]
    assert 3 <= steps <= 3 * 5 and steps <= row_steps <= 4 * steps
