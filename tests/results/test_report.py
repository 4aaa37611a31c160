"""The scenario matrix script and the report: table math on hand-made run folders (written with the
project's own writers), the script's skip/failure behaviour, and one real tiny matrix (slow)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.config import RunConfig
from fedrouter.results.report import (
    cell_stats,
    load_runs,
    main,
    markdown_report,
    paired_csv,
    paired_differences,
    relative_gain,
    results_csv,
    runs_csv,
    write_report,
    zero_shot_stats,
)
from fedrouter.results.run_folder import RunFolder
from fedrouter.utils.io import atomic_write_json

SCRIPT = REPO / "training_scripts" / "run_paper_experiments.sh"
SCENARIO_SETTINGS = {
    "interference": dict(split_strategy="dual", test_distribution="same", router="local", n_clusters="2"),
    "generalization": dict(split_strategy="single", test_distribution="all", router="global", n_clusters="1"),
    "single": dict(split_strategy="single", test_distribution="same", router="local", n_clusters="1"),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(root: Path, scenario: str, method: str, seed: int, rouge1: float, per_task: dict[str, float] | None = None,
             complete: bool = True, **settings) -> RunFolder:
    """A run folder as the simulator leaves it: config.json, metrics.jsonl, results.json."""
    cfg = RunConfig.from_mapping({**SCENARIO_SETTINGS[scenario], "fed_alg": method, "sim_alias": method, "seed": seed,
                                  "output_dir": str(root / scenario), "num_rounds": 2, **settings}, strict=False)
    final = {"rouge1": rouge1, "rouge2": rouge1 / 2, "rougeL": rouge1 * 0.8}
    final.update({f"rouge1/{t}": v for t, v in (per_task or {}).items()})
    folder = RunFolder(cfg.run_dir)
    folder.write_config(cfg.to_dict())
    zero_shot = {"rouge1": 0.01 * (seed + 1), "rouge2": 0.0, "rougeL": 0.01}  # the base model: same for every method
    folder.write_metrics([{"round": 0, "train_loss": None, "eval": zero_shot},
                          {"round": 1, "train_loss": 2.0, "eval": {**final, "rouge1": rouge1 / 2}},
                          {"round": 2, "train_loss": 1.5, "eval": final}])
    if complete:
        folder.write_results({"final_round": 2, "final": final, "fed_alg": method, "seed": seed, "total_time_s": 1.0})
    return folder


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """generalization: fedrouter 0.5/0.7, fedit 0.2/0.4, local 0.25 (one seed);
    interference: fedit 0.3 only, plus an unfinished fedsa run."""
    out = tmp_path / "matrix"
    for seed, fr, fi, qqp in ((0, 0.5, 0.2, 0.9), (1, 0.7, 0.4, 0.7)):
        make_run(out, "generalization", "fedrouter", seed, fr, {"qqp": qqp, "webnlg": 0.1})
        make_run(out, "generalization", "fedit", seed, fi, {"qqp": qqp / 3, "webnlg": 0.3})
    make_run(out, "generalization", "local", 0, 0.25)
    make_run(out, "interference", "fedit", 0, 0.3)
    make_run(out, "interference", "fedsa", 0, 0.1, complete=False)
    return out


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- table math ----------------------------------------------------------------------------------


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


def test_report_without_runs_fails_clearly(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no completed runs" in capsys.readouterr().err


# --- plots ---------------------------------------------------------------------------------------


def add_fedrouter_analysis(folder: RunFolder, rng: np.random.Generator) -> None:
    """What a FedRouter run adds: diagnostics.json and each client's saved test embeddings + routing."""
    atomic_write_json(folder.path / "diagnostics.json", {
        "local_silhouette": {"0": {"2": 0.3, "3": 0.2}, "1": {"2": 0.5, "3": 0.1}},
        "global_silhouette": {"2": 0.4, "3": 0.6, "4": 0.9},
    })
    tasks = ["qqp", "gigaword", "samsum", "webnlg"]
    centers = rng.normal(size=(4, 16)) * 5
    for cid in range(4):
        labels = np.arange(8) % 4
        emb = centers[labels] + rng.normal(size=(8, 16))
        ClientStore(folder.path / "clients", cid).save_eval(2, {"embeddings": emb, "routed": labels},
                                                              {"tasks": [tasks[i] for i in labels]})


def test_every_plot_is_written(matrix, tmp_path):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        add_fedrouter_analysis(RunFolder(matrix / "generalization" / f"fedrouter_seed{seed}"), rng)
    written = write_report(matrix, tmp_path / "report")
    names = {p.name for p in written}
    assert {"results.md", "results.csv", "per_task.csv", "runs.csv", "bars_generalization.png", "bars_interference.png",
            "tsne_generalization.png", "silhouette.png", "rouge1_curves.png"} <= names
    assert "tsne_interference.png" not in names  # no FedRouter run there
    for p in written:
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000


# --- the matrix script ---------------------------------------------------------------------------


def run_script(out: Path, timeout: float, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "output_dir": str(out), "seeds": "0",
           # the scripts call `python3`: the interpreter running the tests
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **variables}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)


def test_script_skips_completed_cells_without_starting_them(tmp_path):
    out = tmp_path / "m"
    for scenario in ("interference", "generalization"):
        for method in ("fedit", "fedrouter"):
            make_run(out, scenario, method, 0, 0.4)
    results = sorted(out.glob("*/*_seed0/results.json"))
    mtimes = [p.stat().st_mtime_ns for p in results]
    proc = run_script(out, 120, methods="fedit fedrouter", scenarios="interference generalization")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("=== skipped") == 4
    assert "seed 0 ->" not in proc.stdout  # the seed launcher never started
    assert [p.stat().st_mtime_ns for p in results] == mtimes
    assert (out / "report" / "results.md").exists() and (out / "report" / "results.csv").exists()


def test_script_rejects_an_unknown_scenario_before_running_anything(tmp_path):
    proc = run_script(tmp_path / "m", 30, methods="fedit", scenarios="single nosuch")
    assert proc.returncode != 0
    assert "unknown scenario 'nosuch'" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_script_tries_every_cell_then_fails_naming_the_failed_ones(tmp_path):
    out = tmp_path / "m"
    make_run(out, "single", "fedit", 0, 0.4)
    proc = run_script(out, 300, methods="nosuch1 nosuch2 fedit", scenarios="single")
    assert proc.returncode == 1
    assert "FAILED: single/nosuch1_seed0 single/nosuch2_seed0" in proc.stderr  # the second was still tried
    assert "fed_alg='nosuch2' is not known" in proc.stdout
    assert (out / "report" / "results.md").exists()  # the report of what completed is still written


@pytest.mark.slow  # four real simulations (each starts Ray): ~5-7 min on 2 busy cores
def test_tiny_matrix_runs_reports_and_resumes(tmp_path):
    out = tmp_path / "m"
    tiny = dict(methods="fedit fedrouter", scenarios="interference generalization", num_clients="4",
                sample_clients="4", num_rounds="2", eval_round="1", max_steps="2", batch_size="8",
                dataset_sample="80", extra="max_new_tokens=4 max_eval_size=8")
    proc = run_script(out, 1200, **tiny)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = out / "report"
    md = (report / "results.md").read_text()
    # the scenario's common settings, then each method's own (router, local k, global K for FedRouter)
    assert "| interference | dual | same | 4 |" in md and "| generalization | single | all | 4 |" in md
    assert "| interference | fedrouter | fedrouter: n_clusters=2, global_n_clusters=4, " in md
    assert "| generalization | fedrouter | fedrouter: n_clusters=1, global_n_clusters=4, " in md
    own = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if "| fedrouter: " in line}
    assert "router=local" in own["interference"] and "router=global" in own["generalization"]
    assert "| interference | fedit | fedit: – |" in md
    assert "Relative gain of fedrouter (ROUGE-1)" in md
    rows = read_csv((report / "results.csv").read_text())
    assert {(r["scenario"], r["method"]) for r in rows} == {(s, m) for s in ("interference", "generalization")
                                                            for m in ("fedit", "fedrouter")}
    assert len(rows) == 2 * 2 * 3 and all(r["n_seeds"] == "1" for r in rows)
    for name in ("bars_interference", "bars_generalization", "tsne_interference", "tsne_generalization",
                 "silhouette", "rouge1_curves"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    # every run evaluated rounds 1 and 2 (the last round always evaluates)
    runs = load_runs(out)
    assert len(runs) == 4 and all(r.results["final_round"] == 2 for r in runs)

    results = sorted(out.glob("*/*_seed0/results.json"))
    mtimes = [p.stat().st_mtime_ns for p in results]
    t0 = time.perf_counter()
    again = run_script(out, 300, **tiny)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("=== skipped") == 4
    assert [p.stat().st_mtime_ns for p in results] == mtimes
    assert time.perf_counter() - t0 < 120  # only the report ran, no simulation


def test_zero_shot_row_counts_each_seed_once(matrix):
    """Round 0 is the base model: every method of a scenario and seed has the same, counted once."""
    stats = zero_shot_stats(load_runs(matrix), "rouge1")
    assert stats["generalization"].n == 2 and stats["generalization"].mean == pytest.approx(0.015)
    assert stats["interference"].n == 1 and stats["interference"].mean == pytest.approx(0.01)
    row = next(line for line in markdown_report(load_runs(matrix), matrix).splitlines()
               if line.startswith("| base model, zero-shot (round 0) |"))
    assert row == "| base model, zero-shot (round 0) | 0.0100 ± – (n=1) | 0.0150 ± 0.0071 (n=2) |"  # interference first


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
