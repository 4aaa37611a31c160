"""4-bit base models (bitsandbytes NF4) on CPU: real Linear4bit layers, and LoRA that learns on them,
also after the same model has generated (one model per process serves both)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.data.federated import client_data
from fedrouter.data.prompt import encode_example
from fedrouter.models.backbone import Backbone, LoraSpec
from fedrouter.models.loader import ModelSpec
from fedrouter.steps.generate import generate
from fedrouter.steps.train import train_adapter

bnb = pytest.importorskip("bitsandbytes")


def _train(generate_first: bool, tmp_path):
    """A fresh 4-bit backbone; optionally generate; then train one adapter from the seeded init."""
    cfg = tiny_settings(tmp_path, load_in_4bit=True, max_steps=8)
    bb = Backbone(ModelSpec.from_config(cfg), LoraSpec.from_config(cfg))  # fresh: not the process cache
    data = client_data(cfg, 2)
    examples = [encode_example(bb.tokenizer, r["instruction"], r["response"], cfg.seq_length) for r in data.train]
    bb.activate("main")
    bb.set_state(bb.init_state(cfg.seed))
    if generate_first:
        generate(bb, [r["instruction"] for r in data.test[:4]], cfg)
    first = train_adapter(bb, examples, cfg, lr=2e-3, seed=1)
    second = train_adapter(bb, examples, cfg, lr=2e-3, seed=2)
    return bb, first.loss, second.loss, bb.get_state()


def test_four_bit_lora_learns_also_after_generating(tmp_path):
    bb, loss1, loss2, alone = _train(False, tmp_path)
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in bb.model.modules()) == 28  # 4 layers x 7 linears
    assert loss2 < loss1 - 0.2, (loss1, loss2)
    # bitsandbytes repacks 4-bit weights for a backward-less CPU kernel once they run in eval mode;
    # the loader switches that off, so a generation before training changes nothing.
    _, _, _, after_generation = _train(True, tmp_path)
    assert all(np.array_equal(alone[k], after_generation[k]) for k in alone)
