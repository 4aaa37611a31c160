"""fedrouter.steps.train, the parts without a model: which samples each optimizer step takes, and how a
batch is padded (training itself runs in every algorithm's tests)."""

from __future__ import annotations

import numpy as np
import torch

from fedrouter.config import RunConfig
from fedrouter.data.prompt import IGNORE_INDEX, Encoded
from fedrouter.steps.train import batch_plan, collate


def test_max_steps_draws_that_many_full_batches_from_reshuffled_passes():
    cfg = RunConfig(max_steps=5, batch_size=4)
    plan = batch_plan(6, cfg, np.random.default_rng(0))
    assert len(plan) == 5 and all(len(step) == 4 for step in plan)
    flat = np.concatenate(plan)
    assert sorted(flat[:6].tolist()) == list(range(6))  # the first pass sees every sample once
    again = batch_plan(6, cfg, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(plan, again, strict=True))  # the seed fixes the order


def test_epochs_when_max_steps_is_zero_and_nothing_for_no_data():
    cfg = RunConfig(max_steps=0, num_train_epochs=2, batch_size=4)
    plan = batch_plan(10, cfg, np.random.default_rng(1))
    assert len(plan) == 2 * 3  # ceil(10 / 4) steps per epoch
    assert batch_plan(0, cfg, np.random.default_rng(1)) == []


def test_collate_pads_right_and_masks_padding_out_of_the_loss():
    batch = [Encoded([5, 6, 7], [IGNORE_INDEX, 6, 7]), Encoded([8], [8])]
    out = collate(batch, pad_id=0, device=torch.device("cpu"))
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    assert all(t.dtype == torch.long for t in out.values())
