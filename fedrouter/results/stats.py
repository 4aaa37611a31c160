"""Statistics over seeds: mean and sample std, and how they are printed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std (ddof=1, as papers report over seeds); a single value has no std (None)."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return float(np.mean(values)), std


def format_mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± " + (f"{std:.4f}" if std is not None else "–")


def mean_std(values: list[float]) -> str:
    return format_mean_std(*mean_and_std(values))


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float | None  # None with a single seed
    n: int

    def __str__(self) -> str:
        return f"{format_mean_std(self.mean, self.std)} (n={self.n})"
