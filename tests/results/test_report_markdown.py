"""fedrouter.results.report_markdown: results.md's tables, gains, settings checks, seen/unseen-task and
runs sections, on hand-made run folders (tests/results/conftest.py)."""

from __future__ import annotations

import json

from fedrouter.results.matrix import load_runs
from fedrouter.results.report_csv import results_csv
from fedrouter.results.report_markdown import markdown_report
from results.conftest import make_run, read_csv


def test_markdown_table_cells_gains_and_missing(matrix):
    md = markdown_report(load_runs(matrix), matrix)
    assert "| fedrouter | – | 0.6000 ± 0.1414 (n=2) |" in md  # scenarios: interference, generalization
    assert "| fedit | 0.3000 ± – (n=1) | 0.3000 ± 0.1414 (n=2) |" in md
    assert "| local | – | 0.2500 ± – (n=1) |" in md
    # (0.6 - 0.3) / 0.3 and (0.6 - 0.25) / 0.25; no fedrouter under interference -> no gain
    assert "| fedit | – | +100.0 % |" in md
    assert "| local | – | +140.0 % |" in md
    # per task, generalization: qqp fedrouter (0.9, 0.7), fedit (0.3, 0.7/3)
    assert "| fedrouter | 0.8000 ± 0.1414 (n=2) | 0.1000 ± 0.0000 (n=2) |" in md
    assert "| scenario | split | tested on | clients |" in md
    # each method's own settings are listed, not compared across methods
    assert "| generalization | fedit | fedit: – |" in md
    assert "| generalization | fedrouter | fedrouter: n_clusters=1, global_n_clusters=4, k_range=1,8, " in md
    assert "| generalization | single | all | 8 |" in md
    assert "interference/fedsa_seed0" in md  # unfinished runs are named
    assert "Settings differ" not in md


def test_settings_that_differ_within_a_scenario_are_flagged(tmp_path):
    make_run(tmp_path, "single", "fedrouter", 0, 0.5)
    make_run(tmp_path, "single", "fedit", 0, 0.4, num_rounds=3)
    md = markdown_report(load_runs(tmp_path), tmp_path)
    assert "Settings differ" in md
    assert "single/fedit_seed0: num_rounds: 2 -> 3" in md


def test_a_router_variant_is_listed_not_flagged(tmp_path):
    # run_generalization.sh's variant: FedRouter where each client uses its own cluster's adapter
    make_run(tmp_path, "generalization", "fedrouter", 0, 0.5)
    make_run(tmp_path, "generalization", "fedrouter_own_cluster", 0, 0.2, fed_alg="fedrouter", router="local")
    # a run folder written before each algorithm owned its settings: FedRouter's keys on a FedIT run
    make_run(tmp_path, "generalization", "fedit", 0, 0.4, router="", test_distribution="", evaluation_mode="global")
    md = markdown_report(load_runs(tmp_path), tmp_path)
    assert "Settings differ" not in md
    assert "| generalization | fedrouter_own_cluster | fedrouter: n_clusters=1, " in md
    assert "router=local" in md.split("fedrouter_own_cluster")[1].split("\n")[0]
    # what clients are tested on must still match
    make_run(tmp_path, "generalization", "local", 0, 0.2, test_distribution="same")
    md = markdown_report(load_runs(tmp_path), tmp_path)
    assert "generalization/local_seed0: test_distribution: 'all' -> 'same'" in md


def test_seen_and_unseen_columns_per_method(tmp_path):
    # Prepare: a leave-one-task-out scenario, two methods, two seeds
    for seed in (0, 1):
        make_run(tmp_path, "generalization", "fedrouter", seed, 0.5, {"seen": 0.6, "unseen": 0.2 + 0.1 * seed})
        make_run(tmp_path, "generalization", "fedit", seed, 0.4, {"seen": 0.45, "unseen": 0.25})
    runs = load_runs(tmp_path)
    # Execute
    md = markdown_report(runs, tmp_path)
    rows = read_csv(results_csv(runs))
    # Assert: seen / unseen means with the unseen spread over seeds, and the CSV rows
    assert "## Seen and unseen tasks (ROUGE-1)" in md
    assert "| fedrouter | 0.6000 / 0.2500 ± 0.0707 (n=2) |" in md
    assert "| fedit | 0.4500 / 0.2500 ± 0.0000 (n=2) |" in md
    assert {(r["method"], r["metric"]) for r in rows} >= {("fedrouter", "rouge1/unseen"), ("fedit", "rouge1/seen")}


def test_runs_section_gives_seeds_minutes_commits_and_dates(tmp_path):
    out = tmp_path / "m"
    for seed, minutes in ((0, 3.0), (1, 5.0)):
        folder = make_run(out, "generalization", "fedit", seed, 0.3)
        results = json.loads((folder.path / "results.json").read_text())
        folder.write_results({**results, "total_time_s": minutes * 60})
        folder.write_provenance(1, {"commit": f"{'ab' if seed else 'cd'}1234567890abcd", "dirty": False})
    folder.write_provenance(4, {"commit": "ab1234567890abcd", "dirty": True})  # seed 1 resumed on a dirty tree
    make_run(out, "generalization", "local", 0, 0.2)  # no provenance.json
    text = markdown_report(load_runs(out), out)
    runs = text[text.index("## Runs"):]
    assert "| generalization | fedit | 0 1 | 4.0 (3.0-5.0) | ab1234567890, ab1234567890+dirty, cd1234567890 |" in runs
    assert "| generalization | local | 0 | 0.0 | – | – |" in runs
    assert "--config <run folder>/config.json" in runs


def test_private_runs_get_their_epsilon_table_and_the_privacy_utility_plot(tmp_path):

    from fedrouter.results.report import write_report

    out = tmp_path / "m"
    for seed in (0, 1):
        make_run(out, "single", "fedit", seed, 0.5)  # no DP
        folder = make_run(out, "generalization", "fedit", seed, 0.3)
        results = json.loads((folder.path / "results.json").read_text())
        results["privacy"] = {"epsilon": 3.0 - 0.1 * seed, "delta": 1e-5, "noise_multiplier": 1.2, "clip": 1.0,
                              "mode": "central", "sampling": "without-replacement", "relation": "replace-one",
                              "releases": 2, "stopped": None}
        (folder.path / "results.json").write_text(json.dumps(results))
    written = write_report(out, tmp_path / "r")
    text = (tmp_path / "r" / "results.md").read_text()
    assert "## Differential privacy" in text and "ε 2.95, σ 1.2, C 1" in text and "no DP" in text
    assert tmp_path / "r" / "privacy_utility.png" in written
