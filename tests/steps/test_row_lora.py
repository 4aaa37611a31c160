"""Per-row LoRA: the batched hooks give PEFT's mixed-adapter logits."""

from __future__ import annotations

from conftest import distinct_adapters, tiny_settings
from fedrouter.models.backbone import get_backbone
from fedrouter.steps.row_lora import row_adapters


def test_row_adapters_match_peft_mixed_batches(tmp_path):
    """The batched per-row LoRA (one pair of batched matmuls per layer) gives PEFT's mixed-adapter
    logits, leaves the model as it was, and hands layers it does not cover to PEFT."""
    import torch

    cfg = tiny_settings(tmp_path)
    backbone = get_backbone(cfg)
    model = backbone.model
    for j, state in enumerate(distinct_adapters(backbone, 3)):
        backbone.set_state(state, slot=f"route_{j}")
    backbone.activate("main")
    model.eval()
    ids = torch.randint(5, 50, (5, 7), generator=torch.Generator().manual_seed(0))  # the same ids in every run
    names = ["route_2", "route_0", "route_1", "route_0", "route_2"]
    with torch.inference_mode():
        peft_logits = model(input_ids=ids, adapter_names=names).logits
        with row_adapters(model, names) as extra:
            assert extra == {}  # the batched path needs no PEFT kwargs
            ours = model(input_ids=ids).logits
        after = model(input_ids=ids).logits  # hooks removed, adapters enabled again: the "main" slot
        main_only = model(input_ids=ids, adapter_names=["main"] * 5).logits
    assert torch.allclose(ours, peft_logits, atol=1e-5) and not torch.allclose(ours, after, atol=1e-3)
    assert torch.allclose(after, main_only, atol=1e-6)
    # a layer it does not cover (in training mode, where dropout applies) -> PEFT's own path
    model.train()
    try:
        with row_adapters(model, names) as extra:
            assert extra == {"adapter_names": names}
    finally:
        model.eval()
        backbone.set_state(backbone.init_state(cfg.seed))
