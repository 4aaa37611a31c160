"""fedrouter.results.matrix: the per-cell statistics over seeds (mean, sample std, seed counts, the
round-0 row, relative gains and paired differences) on hand-made run folders (tests/results/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.results.matrix import cell_stats, load_runs, paired_differences, relative_gain, zero_shot_stats
from fedrouter.results.report_csv import paired_csv
from fedrouter.results.report_markdown import markdown_report
from results.conftest import make_run, read_csv


def test_relative_gain_is_the_papers_definition():
    # The paper's "136 %" under generalization: FedRouter 0.583 vs FedSA 0.247.
    assert relative_gain(0.583, 0.247) == pytest.approx(0.583 / 0.247 - 1)
    assert round(relative_gain(0.583, 0.247) * 100) == 136
    assert relative_gain(0.3, 0.4) == pytest.approx(-0.25)
    assert relative_gain(0.5, 0.0) is None  # undefined, not infinite


def test_mean_sample_std_and_seed_counts(matrix):
    stats = cell_stats(load_runs(matrix), "rouge1")
    fr = stats[("generalization", "fedrouter")]
    assert (fr.mean, fr.n) == (pytest.approx(0.6), 2)
    assert fr.std == pytest.approx(np.sqrt(0.02))  # ddof=1: ((0.1)^2 + (0.1)^2) / (2 - 1)
    assert stats[("generalization", "local")].std is None  # one seed: no std
    assert ("interference", "fedsa") not in stats  # unfinished run not counted
    assert ("interference", "fedrouter") not in stats


def test_zero_shot_row_counts_each_seed_once(matrix):
    """Round 0 is the base model: every method of a scenario and seed has the same, counted once."""
    stats = zero_shot_stats(load_runs(matrix), "rouge1")
    assert stats["generalization"].n == 2 and stats["generalization"].mean == pytest.approx(0.015)
    assert stats["interference"].n == 1 and stats["interference"].mean == pytest.approx(0.01)
    row = next(line for line in markdown_report(load_runs(matrix), matrix).splitlines()
               if line.startswith("| base model, zero-shot (round 0) |"))
    assert row == "| base model, zero-shot (round 0) | 0.0100 ± – (n=1) | 0.0150 ± 0.0071 (n=2) |"  # interference first


def test_paired_difference_per_seed_with_a_t_interval(tmp_path):
    # Prepare: three seeds; fedrouter beats fedit by 0.10, 0.20, 0.15 on the same seeds; local has one
    # seed; fedsa's seed 2 has no fedrouter run to pair with
    out = tmp_path / "m"
    for seed, fr, fi in ((0, 0.5, 0.4), (1, 0.6, 0.4), (2, 0.45, 0.3)):
        make_run(out, "generalization", "fedrouter", seed, fr)
        make_run(out, "generalization", "fedit", seed, fi)
    make_run(out, "generalization", "local", 0, 0.7)
    make_run(out, "interference", "fedsa", 2, 0.1)
    runs = load_runs(out)
    # Execute
    paired = paired_differences(runs, "rouge1", "fedrouter")
    # Assert: mean and sample std of the differences, and the t interval (t(2, 0.975) = 4.3027)
    p, diffs = paired[("generalization", "fedit")]
    assert diffs == pytest.approx({0: 0.1, 1: 0.2, 2: 0.15})
    half = 4.302653 * 0.05 / np.sqrt(3)
    assert (p.mean, p.std, p.n) == (pytest.approx(0.15), pytest.approx(0.05), 3)
    assert (p.low, p.high) == (pytest.approx(0.15 - half, abs=1e-6), pytest.approx(0.15 + half, abs=1e-6))
    assert p.excludes_zero
    local = paired[("generalization", "local")][0]
    assert (local.mean, local.n, local.low) == (pytest.approx(-0.2), 1, None)  # one seed: no interval
    assert ("interference", "fedsa") not in paired
    # ... in the markdown and in paired.csv
    text = markdown_report(runs, out)
    assert "Paired difference fedrouter - baseline (ROUGE-1)" in text and str(p) in text
    rows = [r for r in read_csv(paired_csv(runs)) if r["metric"] == "rouge1"]
    assert [(r["scenario"], r["baseline"], r["n_seeds"]) for r in rows] == [("generalization", "fedit", "3"),
                                                                           ("generalization", "local", "1")]
    assert float(rows[0]["ci95_low"]) == pytest.approx(p.low) and rows[1]["ci95_low"] == ""
