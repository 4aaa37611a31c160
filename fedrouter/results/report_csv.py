"""The report's CSV files: results.csv and per_task.csv (the tables' means and stds), paired.csv (the
reference method minus each baseline per seed) and runs.csv (every run's own scores, the numbers behind
every table)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fedrouter.algorithms.base import default_algorithm
from fedrouter.results.matrix import (
    SCENARIOS,
    Run,
    cell_stats,
    commit_text,
    gains,
    method_order,
    ordered,
    paired_differences,
    report_metrics,
    run_minutes,
    task_names,
    traffic_stats,
)
from fedrouter.results.run_folder import RunFolder


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def csv_keys(runs: list[Run]) -> list[str]:
    """What results.csv and paired.csv hold: every metric's overall score, then the headline's seen and
    unseen ones where the runs have them."""
    metrics = report_metrics(runs)
    extra = [k for k in (f"{metrics[0]}/seen", f"{metrics[0]}/unseen") if any(k in r.results["final"] for r in runs)]
    return [*metrics, *extra]


def results_csv(runs: list[Run], reference: str | None = None) -> str:
    reference = reference or default_algorithm()
    rows = []
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    methods = ordered({r.method for r in runs}, method_order())
    for key in csv_keys(runs):
        stats = cell_stats(runs, key)
        g = gains(stats, reference)
        for s in scenarios:
            for m in methods:
                if (s, m) in stats:
                    st = stats[(s, m)]
                    rows.append([s, m, key, st.mean, st.std, st.n, g.get((s, m))])
    traffic = traffic_stats(runs)
    rows += [[s, m, "communication_mb", st.mean, st.std, st.n, None]
             for s in scenarios for m in methods if (st := traffic.get((s, m)))]
    return _csv(["scenario", "method", "metric", "mean", "std", "n_seeds", f"{reference}_gain"], rows)


def paired_csv(runs: list[Run], reference: str | None = None) -> str:
    """One row per scenario x baseline x metric: the paired difference reference - baseline, its t
    interval, and the per-seed differences (seed:value, space separated)."""
    reference = reference or default_algorithm()
    rows = []
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    methods = ordered({r.method for r in runs}, method_order())
    for key in csv_keys(runs):
        paired = paired_differences(runs, key, reference)
        for s in scenarios:
            for m in methods:
                if (s, m) in paired:
                    p, diffs = paired[(s, m)]
                    rows.append([s, m, key, p.mean, p.std, p.n, p.low, p.high,
                                 " ".join(f"{k}:{v:.6f}" for k, v in diffs.items())])
    return _csv(["scenario", "baseline", "metric", f"{reference}_minus_baseline", "std", "n_seeds", "ci95_low",
                 "ci95_high", "per_seed"], rows)


def per_task_csv(runs: list[Run]) -> str:
    rows = []
    methods = ordered({r.method for r in runs}, method_order())
    for s in ordered({r.scenario for r in runs}, SCENARIOS):
        in_s = [r for r in runs if r.scenario == s]
        metrics = report_metrics(in_s)
        for t in dict.fromkeys(t for key in metrics for t in task_names(in_s, key)):
            for key in metrics:
                stats = cell_stats(in_s, f"{key}/{t}")
                rows += [[s, m, t, key, st.mean, st.std, st.n] for m in methods if (st := stats.get((s, m)))]
    return _csv(["scenario", "method", "task", "metric", "mean", "std", "n_seeds"], rows)


def runs_csv(runs: list[Run]) -> str:
    """One row per run and metric key of its results["final"] (overall, per task, seen/unseen): the run's
    final score, its round-0 (zero-shot) score when it had one, minutes of rounds and the commit it
    last ran on. Every mean, std and paired difference of the report can be recomputed from it."""
    rows = []
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    methods = ordered({r.method for r in runs}, method_order())
    for r in sorted(runs, key=lambda r: (scenarios.index(r.scenario), methods.index(r.method), r.seed)):
        folder = RunFolder(r.path)
        zero = folder.read_zero_shot() or {}
        sessions = (folder.read_provenance() or {}).get("sessions")
        commit = commit_text(sessions[-1]) if sessions else ""
        rows += [[r.scenario, r.method, r.seed, key, value, zero.get(key), r.results.get("final_round"), run_minutes(r),
                  commit]
                 for key, value in r.results["final"].items() if key.split("/", 1)[0] in r.metrics]
    return _csv(["scenario", "method", "seed", "metric", "final", "zero_shot", "final_round", "minutes", "commit"], rows)
