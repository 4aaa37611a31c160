"""Per-row LoRA: each row of a batch through its own adapter, with batched matmuls instead of PEFT's
loop over the adapters present."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fedrouter.utils.lazy import lazy_import

torch = lazy_import("torch")


def _plain_lora_layers(model, names: set[str]) -> list | None:
    """The model's LoRA layers if every one is plain LoRA on a linear layer for these adapters
    (no DoRA or other variant, no LoRA bias, not merged, in eval mode); None otherwise."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for m in layers:
        if m.merged or m.training or any(
                n not in m.lora_A or n in getattr(m, "lora_variant", {}) or not isinstance(m.lora_A[n], torch.nn.Linear)
                or m.lora_B[n].bias is not None for n in names):
            return None
    return layers


@contextmanager
def row_adapters(model, names: Sequence[str] | None) -> Iterator[dict]:
    """Within: each row of the model's batch goes through its own LoRA adapter (`names[row]`), as
    with PEFT's mixed-adapter batches (`adapter_names`), and yields the forward's extra kwargs.

    PEFT runs a mixed batch with, in every LoRA layer at every step, a loop over the adapters present,
    each on its own gathered sub-batch, which makes a mixed decode step slower than a one-adapter one
    (docs/benchmark.md has the measurements). Here PEFT's adapters are disabled (its layers
    return the base output) and a forward hook on each LoRA layer adds delta = scaling_row (x A_row^T)
    B_row^T for all rows with one batched matmul and one batched multiply-add (the rows' A and B
    stacked once per batch): a mixed step then costs no more than PEFT's one-adapter step. The
    arithmetic is PEFT's plain LoRA in eval mode (dropout off), in its order; layers it does not cover
    (DoRA and other variants, LoRA bias, merged, training mode) fall back to PEFT's own path."""
    if names is None:
        yield {}
        return
    unique = sorted(set(names))
    layers = _plain_lora_layers(model, set(unique))
    if layers is None:
        yield {"adapter_names": list(names)}
        return
    row = torch.tensor([unique.index(n) for n in names])
    handles = []

    scalings = [float(layer.scaling[n]) for layer in layers for n in unique]
    uniform = scalings[0] if len(set(scalings)) == 1 else None  # fedrouter's slots share one LoRA config

    def hook(a, b, s):
        def add_delta(module, args, out):
            x = args[0]
            if uniform is not None and x.dtype == out.dtype == a.dtype:
                return torch.baddbmm(out, torch.bmm(x, a), b, alpha=uniform)  # out + s (x A^T) B^T in one op
            # PEFT's order: the LoRA product in the adapter's dtype, scaled, cast, added
            return out + (torch.bmm(torch.bmm(x.to(a.dtype), a), b) * s).to(out.dtype)
        return add_delta

    try:
        for m in layers:
            a = torch.stack([m.lora_A[n].weight.t() for n in unique])[row]  # rows x in x r
            b = torch.stack([m.lora_B[n].weight.t() for n in unique])[row]  # rows x r x out
            s = torch.tensor([float(m.scaling[n]) for n in unique], dtype=a.dtype)[row].view(-1, 1, 1)
            handles.append(m.register_forward_hook(hook(a, b, s)))
        with model.disable_adapter():
            yield {}
    finally:
        for h in handles:
            h.remove()
