"""fedrouter.results.stats: mean and sample std over seeds, paired t intervals, and how they print."""

from __future__ import annotations

import pytest

from fedrouter.results.stats import Paired, Stat, format_mean_std, mean_and_std, mean_std, paired_interval


def test_mean_and_sample_std_and_a_single_seed_without_std():
    assert mean_and_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # ddof=1: sqrt(((-1)^2 + 0 + 1^2) / 2)
    assert mean_and_std([0.5]) == (0.5, None)
    assert mean_std([1.0, 2.0, 3.0]) == "2.0000 ± 1.0000" and mean_std([0.5]) == "0.5000 ± –"
    assert format_mean_std(0.12345, None) == "0.1235 ± –"
    assert str(Stat(0.25, 0.05, 3)) == "0.2500 ± 0.0500 (n=3)"


def test_paired_interval_by_hand_for_two_seeds():
    # differences 1 and 3: mean 2, std sqrt(2), t(1, 0.975) = 12.706: half width 12.706 * sqrt(2) / sqrt(2)
    p = paired_interval([1.0, 3.0])
    assert (p.mean, p.n, p.level) == (2.0, 2, 0.95) and p.std == pytest.approx(2**0.5)
    assert p.low == pytest.approx(2.0 - 12.7062, abs=1e-3) and p.high == pytest.approx(2.0 + 12.7062, abs=1e-3)
    assert not p.excludes_zero and str(p).endswith("(n=2)") and "*" not in str(p)


def test_an_interval_that_excludes_zero_is_marked_and_one_seed_has_none():
    p = paired_interval([0.10, 0.11, 0.12, 0.10])
    assert p.low > 0 and p.excludes_zero and str(p).startswith("+0.1075 [") and "]* (n=4)" in str(p)
    assert paired_interval([-0.2, -0.3, -0.25]).excludes_zero  # entirely below zero
    one = paired_interval([0.3])
    assert one == Paired(0.3, None, 1, None, None) and not one.excludes_zero and str(one) == "+0.3000 [–] (n=1)"
    assert paired_interval([1.0, 2.0, 3.0], level=0.99).high > paired_interval([1.0, 2.0, 3.0]).high
