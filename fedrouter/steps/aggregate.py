"""Server-side math over adapter arrays: weighted averaging and sanity checks. No Flower here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AdapterState = dict[str, np.ndarray]


def weighted_average(states: Sequence[AdapterState], weights: Sequence[float]) -> AdapterState:
    """FedAvg: sum_i w_i * state_i / sum_i w_i, key by key (float64 accumulation)."""
    if not states:
        raise ValueError("weighted_average needs at least one state")
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    w = w / w.sum()
    keys = states[0].keys()
    for s in states[1:]:
        if s.keys() != keys:
            raise ValueError("states to average have different keys")
    return {
        k: sum(wi * s[k].astype(np.float64) for wi, s in zip(w, states, strict=True)).astype(states[0][k].dtype)
        for k in keys
    }


def non_finite_keys(state: AdapterState) -> list[str]:
    """Keys whose arrays hold NaN or inf (a diverged client)."""
    return [k for k, v in state.items() if not np.isfinite(v).all()]


def select(state: AdapterState, part: str) -> AdapterState:
    """The A or B half of a LoRA state ('lora_A' / 'lora_B'), or everything for 'all'."""
    if part == "all":
        return dict(state)
    return {k: v for k, v in state.items() if f".{part}." in k}
