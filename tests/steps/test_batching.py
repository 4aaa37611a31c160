"""The choice between mixed-adapter batches and one routed group after another is measured, not fixed."""

from __future__ import annotations

import gc

from conftest import tiny_settings
from fedrouter.models.backbone import Backbone, get_backbone
from fedrouter.steps import batching
from fedrouter.steps.batching import mixed_batches_pay


def test_the_choice_comes_from_measured_step_times(tmp_path, monkeypatch):
    backbone = get_backbone(tiny_settings(tmp_path))
    assert not mixed_batches_pay(backbone, [5], 8)  # one group: nothing to mix
    # a weight-bound model (a step costs the same at any batch) -> mixing pays
    monkeypatch.setattr(batching, "_step_seconds", lambda bb, rows, groups: 1.0)
    assert mixed_batches_pay(backbone, [2, 2, 2, 2], 8)
    # a model whose mixed step costs more than the groups' steps together -> one group after another
    monkeypatch.setattr(batching, "_step_seconds", lambda bb, rows, groups: 1.0 if groups == 1 else 5.0)
    assert not mixed_batches_pay(backbone, [2, 2, 2, 2], 8)
    # measured for real (cached per process): a positive time per (rows, groups)
    monkeypatch.undo()
    assert batching._step_seconds(backbone, 4, 2) > 0 and (4, 2) in batching._STEP_SECONDS[backbone]
    backbone.set_state(backbone.zero_like(), slot="route_1")  # slots made while measuring still load in place


def test_step_times_are_kept_per_backbone_and_go_with_it(tmp_path):
    """Keyed on the backbone itself, weakly: a freed backbone's times leave no entry that a new
    object could inherit."""
    cfg = tiny_settings(tmp_path)
    other = Backbone(get_backbone(cfg).spec, get_backbone(cfg).lora)
    batching._step_seconds(other, 2, 1, repeats=1)
    assert other in batching._STEP_SECONDS
    before = len(batching._STEP_SECONDS)
    del other
    gc.collect()
    assert len(batching._STEP_SECONDS) == before - 1
