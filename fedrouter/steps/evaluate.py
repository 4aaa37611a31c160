"""Batched greedy generation, one adapter per batch or per row (scoring: fedrouter.metrics)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from fedrouter.data.prompt import encode_prompt
from fedrouter.utils.timing import timed

# Per process: decode steps (one forward per generated position of a batch) and row-steps (times the
# batch's rows), for the benchmark's roofline; reset by whoever reads them.
DECODE_COUNTERS = {"steps": 0, "row_steps": 0}


@timed("generate")
@torch.inference_mode()
def generate(backbone, instructions: Sequence[str], cfg, batch_size: int | None = None,
             adapter_names: Sequence[str] | None = None) -> list[str]:
    """Greedy continuations of the prompts, in input order.

    Prompts are sorted by length so each batch pads little (length bucketing), left-padded so the
    generated tokens line up, and decoded from the KV cache. With `adapter_names` (one LoRA slot per
    prompt), one batch mixes adapters: PEFT applies each row's own adapter (mixed-adapter batches)."""
    tok = backbone.tokenizer
    batch_size = batch_size or cfg.batch_size_eval
    encoded = [encode_prompt(tok, ins, cfg.seq_length) for ins in instructions]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(encoded)
    model = backbone.model
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            n = len(encoded[i])
            ids[row, width - n :] = torch.tensor(encoded[i])
            mask[row, width - n :] = 1
        names = [adapter_names[i] for i in idx] if adapter_names is not None else None
        with row_adapters(model, names) as extra:
            gen = model.generate(
                **extra,
                input_ids=ids.to(backbone.device),
                attention_mask=mask.to(backbone.device),
                max_new_tokens=cfg.max_new_tokens,
                do_sample=False,
                num_beams=1,
                use_cache=True,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        DECODE_COUNTERS["steps"] += gen.shape[1] - width
        DECODE_COUNTERS["row_steps"] += (gen.shape[1] - width) * len(idx)
        texts = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        for row, i in enumerate(idx):
            out[i] = texts[row].strip()
    return out


# --- one batch per client (mixed adapters) or one per routed group --------------------------------

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
    each on its own gathered sub-batch (SmolLM2-135M, one CPU thread, 4 adapters in a batch of 8: a
    decode step ~12 % slower than with one adapter). Here PEFT's adapters are disabled (its layers
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


_STEP_SECONDS: dict[tuple, float] = {}  # per process: measured one-token forward times


def _step_seconds(backbone, rows: int, groups: int, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds of one forward of `rows` one-token sequences (a decode step's weight
    reads and matmuls), with one adapter (groups = 1) or the rows spread over `groups` adapters."""
    key = (id(backbone), rows, groups)
    if key not in _STEP_SECONDS:
        import time

        slots = [f"route_{j}" for j in range(groups)]
        for slot in slots:  # outside inference mode: a slot's parameters are later loaded in place
            backbone.ensure_slot(slot)
        ids = torch.full((rows, 1), backbone.tokenizer.eos_token_id or 0, dtype=torch.long, device=backbone.device)
        backbone.model.eval()
        best = float("inf")
        # a decode step's cost: the per-batch setup of the rows' adapters stays outside the timing
        with torch.inference_mode(), row_adapters(backbone.model, [slots[r % groups] for r in range(rows)]
                                                  if groups > 1 else None) as extra:
            for _ in range(repeats + 1):  # the first call warms up
                t0 = time.perf_counter()
                backbone.model(input_ids=ids, **extra)
                best = min(best, time.perf_counter() - t0)
        _STEP_SECONDS[key] = best
    return _STEP_SECONDS[key]


def mixed_batches_pay(backbone, group_sizes: Sequence[int], batch_size: int) -> bool:
    """Whether decoding all groups in mixed-adapter batches is faster than one group after another,
    from measured decode-step costs (cached per process): grouped = sum over groups of the steps of
    their batches; mixed = the steps of the combined batches with the rows spread over the groups.
    On a large model a step is bound by reading the weights, so one batch of 8 costs about what a
    batch of 2 does and mixing wins; on a tiny one the per-adapter work inside a mixed step dominates."""
    sizes = [s for s in group_sizes if s > 0]
    if len(sizes) < 2:
        return False
    grouped = 0.0
    for s in sizes:
        full, rest = divmod(s, batch_size)
        grouped += full * _step_seconds(backbone, batch_size, 1) + (_step_seconds(backbone, rest, 1) if rest else 0.0)
    full, rest = divmod(sum(sizes), batch_size)
    groups = len(sizes)
    mixed = full * _step_seconds(backbone, batch_size, groups)
    if rest:
        mixed += _step_seconds(backbone, rest, min(groups, rest))
    return mixed < grouped
