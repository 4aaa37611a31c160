"""Derived seeds: every random choice is a pure function of the run seed and where it happens."""

from __future__ import annotations

import numpy as np


def derive_seed(seed: int, *parts: int) -> int:
    """A 31-bit seed for (run seed, client, round, ...); independent of process and call order."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0] & 0x7FFFFFFF)
