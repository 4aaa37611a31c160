"""Whether routed groups are decoded in mixed-adapter batches or one after another, from measured
decode-step costs (`generation_batching=auto`)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

from fedrouter.steps.row_lora import row_adapters
from fedrouter.utils import process_state
from fedrouter.utils.lazy import lazy_import

torch = lazy_import("torch")

# Per process: backbone -> {(rows, groups): best seconds of a one-token forward}. Weak keys: the
# times of a backbone go with it when it is freed.
_STEP_SECONDS: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], float]] = process_state.register(
    f"{__name__}._STEP_SECONDS", weakref.WeakKeyDictionary())


def _step_seconds(backbone, rows: int, groups: int, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds of one forward of `rows` one-token sequences (a decode step's weight
    reads and matmuls), with one adapter (groups = 1) or the rows spread over `groups` adapters."""
    times = _STEP_SECONDS.setdefault(backbone, {})
    if (rows, groups) not in times:
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
        times[rows, groups] = best
    return times[rows, groups]


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
