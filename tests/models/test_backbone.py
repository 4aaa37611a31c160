"""fedrouter.models.backbone: the LoRA spec a run's settings give, and the adapter states of the one
shared model (seeded initialisation, a state set and read back)."""

from __future__ import annotations

import numpy as np

from conftest import tiny_settings
from fedrouter.config import RunConfig
from fedrouter.models.backbone import LoraSpec, get_backbone


def test_the_lora_spec_follows_the_settings():
    spec = LoraSpec.from_config(RunConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0, lora_target_modules="q_proj, v_proj"))
    assert spec == LoraSpec(4, 8, 0.0, ("q_proj", "v_proj"))
    peft = spec.peft_config()
    assert (peft.r, peft.lora_alpha, peft.lora_dropout, set(peft.target_modules)) == (4, 8, 0.0, {"q_proj", "v_proj"})
    assert LoraSpec.from_config(RunConfig()).target_modules is None  # PEFT's default for the model


def test_adapter_states_are_seeded_and_set_and_read_back(tmp_path):
    backbone = get_backbone(tiny_settings(tmp_path))
    assert get_backbone(tiny_settings(tmp_path / "other")) is backbone  # one base model per process
    a, again, other = backbone.init_state(1), backbone.init_state(1), backbone.init_state(2)
    assert list(a) == list(again) and all(np.array_equal(a[k], again[k]) for k in a)
    assert any(not np.array_equal(a[k], other[k]) for k in a if "lora_A" in k)
    assert all(not v.any() for k, v in a.items() if "lora_B" in k)  # B = 0: the base model
    state = {k: np.full(v.shape, 0.5, np.float32) for k, v in a.items()}
    before = backbone.get_state()
    try:  # the backbone is shared by the process's tests: its adapter is put back
        backbone.set_state(state)
        assert all(np.array_equal(backbone.get_state()[k], v) for k, v in state.items())
    finally:
        backbone.set_state(before)
    assert {k: v.shape for k, v in backbone.zero_like().items()} == {k: v.shape for k, v in a.items()}
