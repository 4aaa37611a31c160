"""fedrouter.results.report_csv: results.csv's rows and runs.csv, every run's own scores, on hand-made
run folders (tests/results/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.results.matrix import cell_stats, load_runs
from fedrouter.results.report_csv import results_csv, runs_csv
from results.conftest import read_csv


def test_csv_rows(matrix):
    rows = read_csv(results_csv(load_runs(matrix)))
    by = {(r["scenario"], r["method"], r["metric"]): r for r in rows}
    assert len(rows) == 4 * 3  # 4 filled cells x 3 metrics; missing cells have no row
    fr = by[("generalization", "fedrouter", "rouge1")]
    assert float(fr["mean"]) == pytest.approx(0.6) and float(fr["std"]) == pytest.approx(np.sqrt(0.02))
    assert fr["n_seeds"] == "2" and fr["fedrouter_gain"] == ""
    assert float(by[("generalization", "fedit", "rouge2")]["fedrouter_gain"]) == pytest.approx(1.0)  # 0.3 vs 0.15
    local = by[("generalization", "local", "rouge1")]
    assert local["std"] == "" and float(local["fedrouter_gain"]) == pytest.approx(1.4)
    assert by[("interference", "fedit", "rouge1")]["fedrouter_gain"] == ""


def test_runs_csv_keeps_every_runs_own_scores(matrix):
    """runs.csv: one row per completed run and metric, the final score beside the run's zero-shot one;
    the report's means and stds come back from it alone."""
    runs = load_runs(matrix)
    rows = read_csv(runs_csv(runs))
    assert len(rows) == sum(len(r.results["final"]) for r in runs) == 6 * 3 + 4 * 2  # 6 runs x 3 metrics, 4 of them with 2 tasks
    by = {(r["scenario"], r["method"], r["seed"], r["metric"]): r for r in rows}
    fr1 = by[("generalization", "fedrouter", "1", "rouge1")]
    assert float(fr1["final"]) == 0.7 and float(fr1["zero_shot"]) == pytest.approx(0.02) and fr1["final_round"] == "2"
    assert float(by[("generalization", "fedit", "0", "rouge1/qqp")]["final"]) == pytest.approx(0.3)
    assert by[("generalization", "fedit", "0", "rouge1/qqp")]["zero_shot"] == ""  # no per-task round-0 score here
    assert not any(r["method"] == "fedsa" for r in rows)  # unfinished runs have no row
    stats = cell_stats(runs, "rouge1")
    for (scenario, method), st in stats.items():
        values = [float(r["final"]) for r in rows if (r["scenario"], r["method"], r["metric"]) == (scenario, method, "rouge1")]
        assert np.mean(values) == pytest.approx(st.mean) and len(values) == st.n
