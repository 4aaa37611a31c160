"""Batched greedy generation: length-bucketed, left-padded, KV-cached, with one adapter or one per row."""

from __future__ import annotations

from collections.abc import Sequence

from fedrouter.data.prompt import encode_prompt
from fedrouter.steps.row_lora import row_adapters
from fedrouter.utils import process_state
from fedrouter.utils.lazy import inference_mode, lazy_import
from fedrouter.utils.timing import timed

torch = lazy_import("torch")

# Per process: decode steps (one forward per generated position of a batch) and row-steps (times the
# batch's rows), for the benchmark's roofline; whoever reads them resets them (process_state.clear).
DECODE_COUNTERS = process_state.register(f"{__name__}.DECODE_COUNTERS", {"steps": 0, "row_steps": 0},
                                         reset=lambda: DECODE_COUNTERS.update(steps=0, row_steps=0),
                                         size=lambda: sum(map(bool, DECODE_COUNTERS.values())))


@timed("generate")
@inference_mode
def generate(backbone, instructions: Sequence[str], cfg, batch_size: int | None = None,
             adapter_names: Sequence[str] | None = None) -> list[str]:
    """Greedy continuations of the prompts, in input order.

    Prompts are sorted by length so each batch pads little (length bucketing), left-padded so the
    generated tokens line up, and decoded from the KV cache. With `adapter_names` (one LoRA slot per
    prompt), one batch mixes adapters: each row goes through its own (`row_lora.row_adapters`)."""
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
