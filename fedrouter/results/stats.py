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


@dataclass(frozen=True)
class Paired:
    """A paired difference over seeds (e.g. a method minus a baseline, each seed's runs sharing split
    and seed): mean, sample std and a two-sided t interval for the mean; no std or interval for one seed."""

    mean: float
    std: float | None
    n: int
    low: float | None
    high: float | None
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.mean:+.4f} [–] (n={self.n})"
        mark = "*" if self.excludes_zero else ""
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]{mark} (n={self.n})"


def paired_interval(differences: list[float], level: float = 0.95) -> Paired:
    """Mean of per-seed differences with its t interval: mean ± t(n-1, (1+level)/2) * std / sqrt(n).
    With few seeds the t quantile is large (12.7 for two seeds at 95 %): the interval says so honestly."""
    from scipy import stats

    values = np.asarray(differences, dtype=np.float64)
    mean, std = mean_and_std(list(values))
    if std is None:
        return Paired(mean, None, len(values), None, None, level)
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1)) * std / np.sqrt(len(values))
    return Paired(mean, std, len(values), mean - half, mean + half, level)
