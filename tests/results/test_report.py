"""The scenario matrix script and the report's entry point: every file and plot written, the script's
skip/failure behaviour, and one real tiny matrix (slow). The tables' content: test_matrix.py,
test_report_markdown.py, test_report_csv.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.results.matrix import load_runs
from fedrouter.results.report import main, write_report
from fedrouter.results.run_folder import RunFolder
from fedrouter.utils.io import atomic_write_json
from results.conftest import make_run, read_csv

SCRIPT = REPO / "training_scripts" / "run_paper_experiments.sh"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
