"""Comparison report of a scenario matrix: `python -m fedrouter.results.report OUTPUT_DIR [--out DIR]`.

Reads the run folders `<OUTPUT_DIR>/<scenario>/<method>_seed<seed>/` that
training_scripts/run_paper_experiments.sh writes, and writes to DIR (default OUTPUT_DIR/report):
results.md and results.csv (the final score of each of the runs' metrics per method x scenario, mean ±
sample std over seeds, and the reference method's relative gain over each other one), paired.csv (the reference minus each
baseline per seed, with a 95 % t interval over seeds; also in results.md), per_task.csv (the same per task),
runs.csv (every run's own final scores beside its round-0 zero-shot ones, one row per run and metric: the
per-seed numbers behind every table, kept when the run folders are gone), and the plots of
fedrouter.results.plots plus whatever figures an algorithm's registry entry adds (`report_plots`). Methods are found from the run folders; the reference is the registry's proposed
method unless --reference names another. Only completed runs (with a results.json) count; missing
cells show as "–".

An algorithm's figures may read what its clients saved (FedRouter's t-SNE reads test embeddings
under `clients/`). That is client-private data: in simulation it sits on the researcher's own
machine and is read here as local analysis; in a real federation it never leaves the clients.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrouter.algorithms.base import algorithms, default_algorithm, get_algorithm
from fedrouter.config import ConfigError, RunConfig
from fedrouter.metrics import MetricSelection, display_name, get_metric
from fedrouter.results.provenance import COMMIT_CHARS, differences
from fedrouter.results.run_folder import RunFolder, config_differences
from fedrouter.results.stats import Paired, Stat, mean_and_std, paired_interval
from fedrouter.results.summary import aliases, collect
from fedrouter.utils.io import atomic_write_text

SCENARIOS = ("interference", "generalization", "single", "iid")  # display order; others follow
PER_RUN_KEYS = {"fed_alg", "sim_alias", "seed", "output_dir"}  # settings allowed to differ within a scenario
DASH = "–"
ZERO_SHOT = "base model, zero-shot (round 0)"


@dataclass(frozen=True)
class Run:
    scenario: str
    method: str
    seed: int
    path: Path
    results: dict[str, Any]
    metrics: tuple[str, ...] = MetricSelection.from_settings().names  # what the run scored (its config.json)


# --- reading ----------------------------------------------------------------------------------------


def load_runs(output_dir: Path) -> list[Run]:
    """Every completed run folder <output_dir>/<scenario>/<method>_seed<seed>/."""
    runs = []
    for scenario_dir in sorted(p for p in Path(output_dir).iterdir() if p.is_dir()):
        for method in aliases(scenario_dir):
            for seed, results in sorted(collect(scenario_dir, method).items()):
                path = scenario_dir / f"{method}_seed{seed}"
                metrics = MetricSelection.of_config(RunFolder(path).read_config()).names
                runs.append(Run(scenario_dir.name, method, seed, path, results, metrics))
    return runs


def incomplete_runs(output_dir: Path) -> list[str]:
    """<scenario>/<method>_seed<seed> folders without results.json (running, interrupted or failed)."""
    return sorted(f"{p.parent.name}/{p.name}" for p in Path(output_dir).glob("*/*_seed*")
                  if p.is_dir() and re.fullmatch(r".+_seed-?\d+", p.name) and not (p / "results.json").exists())


def method_order() -> tuple[str, ...]:
    """The registry's order (the paper's baselines, then the proposed method); other run names after."""
    return tuple(a.name for a in algorithms())


def ordered(names: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    """Names in the preferred order first, the rest sorted after them."""
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


# --- table math -------------------------------------------------------------------------------------


def cell_stats(runs: list[Run], key: str) -> dict[tuple[str, str], Stat]:
    """(scenario, method) -> Stat over seeds of results["final"][key] (runs lacking the key skipped)."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        if key in r.results["final"]:
            values[(r.scenario, r.method)].append(float(r.results["final"][key]))
    return {cell: Stat(*mean_and_std(v), len(v)) for cell, v in values.items()}


def traffic_stats(runs: list[Run]) -> dict[tuple[str, str], Stat]:
    """(scenario, method) -> Stat over seeds of the run's communication, in MB (10^6 bytes of tensor
    values, down + up, all rounds); runs from before the accounting are skipped."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        comm = r.results.get("communication")
        if comm:
            values[(r.scenario, r.method)].append(comm["total_bytes"] / 1e6)
    return {cell: Stat(*mean_and_std(v), len(v)) for cell, v in values.items()}


def zero_shot_stats(runs: list[Run], key: str) -> dict[str, Stat]:
    """scenario -> Stat over seeds of the round-0 evaluation (the base model before any training,
    the same for every method of a scenario and seed: one run per seed counts)."""
    per_seed: dict[str, dict[int, float]] = defaultdict(dict)
    for r in sorted(runs, key=lambda r: r.method):
        base = RunFolder(r.path).read_zero_shot()
        if base is not None and key in base:
            per_seed[r.scenario].setdefault(r.seed, float(base[key]))
    return {s: Stat(*mean_and_std(list(v.values())), len(v)) for s, v in per_seed.items()}


def relative_gain(ours: float, baseline: float) -> float | None:
    """(ours - baseline) / baseline, as the paper's "136 %" = 0.583 / 0.247 - 1; None if baseline is 0."""
    return (ours - baseline) / baseline if baseline else None


def gains(stats: dict[tuple[str, str], Stat], reference: str) -> dict[tuple[str, str], float | None]:
    """(scenario, baseline) -> relative gain of the reference's mean over the baseline's mean."""
    out = {}
    for (scenario, method), stat in stats.items():
        ref = stats.get((scenario, reference))
        if method != reference and ref is not None:
            out[(scenario, method)] = relative_gain(ref.mean, stat.mean)
    return out


def paired_differences(runs: list[Run], key: str, reference: str) -> dict[tuple[str, str], tuple[Paired, dict[int, float]]]:
    """(scenario, baseline) -> (the paired difference reference - baseline over the seeds both completed,
    {seed: difference}). A seed's two runs share the split, the data and the seed, so the difference
    removes what the seed does to both (the paired comparison the paper's seeds allow)."""
    final = {(r.scenario, r.method, r.seed): float(r.results["final"][key]) for r in runs if key in r.results["final"]}
    out = {}
    for scenario, method in sorted({(s, m) for s, m, _ in final}):
        if method == reference:
            continue
        diffs = {seed: final[(scenario, reference, seed)] - value for (s, m, seed), value in sorted(final.items())
                 if s == scenario and m == method and (scenario, reference, seed) in final}
        if diffs:
            out[(scenario, method)] = (paired_interval(list(diffs.values())), diffs)
    return out


def report_metrics(runs: list[Run]) -> list[str]:
    """Every metric the runs scored, in the order of their settings; the first is the headline (bars,
    curves, per-task and seen/unseen tables)."""
    return list(dict.fromkeys(m for r in runs for m in r.metrics))


def task_names(runs: list[Run], metric: str) -> list[str]:
    """The tasks scored by `metric` in these runs, in the order the runs report them."""
    names = dict.fromkeys(k.split("/", 1)[1] for r in runs for k in r.results["final"] if k.startswith(f"{metric}/"))
    return [t for t in names if t not in ("seen", "unseen")]  # those two are aggregates, shown apart


def metric_title(key: str) -> str:
    """The metric's display name, marked when lower scores are better."""
    try:
        lower = not get_metric(key).higher_is_better
    except ValueError:  # a metric the run folders hold but this process does not know
        lower = False
    return f"{display_name(key)}{' (lower is better)' if lower else ''}"


# --- tables -----------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _gain_text(gain: float | None) -> str:
    return DASH if gain is None else f"{gain * 100:+.1f} %"


def read_config(run: Run) -> RunConfig:
    return RunConfig.from_mapping(RunFolder(run.path).read_config() or {}, strict=False)


def common_settings(cfg: RunConfig) -> dict[str, Any]:
    """The settings every method of a scenario must share: all but the algorithm's own and per-run ones."""
    own = set(cfg.alg.defaults())
    return {k: v for k, v in cfg.to_dict().items() if k not in own and k not in PER_RUN_KEYS}


def own_settings(cfg: RunConfig) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items() if k in cfg.alg.defaults()) or DASH


def scenario_settings(runs: list[Run], scenario: str, reference: str) -> tuple[RunConfig, list[str], dict[str, str]]:
    """The scenario's resolved settings (from the reference method's run when there is one), every
    setting that differs between its runs beyond method and seed (should be none), and each
    method's own settings (which must agree over its seeds)."""
    folders = [r for r in runs if r.scenario == scenario]
    folders.sort(key=lambda r: (r.method != reference, r.method, r.seed))
    configs = [(r, read_config(r)) for r in folders]
    base_cfg = configs[0][1]
    problems: list[str] = []
    own: dict[str, str] = {}
    for r, cfg in configs:
        if r is not configs[0][0]:
            problems += [f"{scenario}/{r.method}_seed{r.seed}: {d}"
                         for d in config_differences(common_settings(base_cfg), common_settings(cfg))]
        text = f"{cfg.fed_alg}: {own_settings(cfg)}"
        if own.setdefault(r.method, text) != text:
            problems.append(f"{scenario}/{r.method}_seed{r.seed}: own settings {text} differ from another seed's "
                            f"{own[r.method]}")
    return base_cfg, problems, own


def provenance_note(runs: list[Run], scenario: str) -> str | None:
    """What differs in the provenance (latest session) of the scenario's runs: code, packages,
    hardware; run folders from before provenance.json count as unknown. None if nothing differs."""
    in_s = sorted((r for r in runs if r.scenario == scenario), key=lambda r: (r.method, r.seed))
    records = {f"{r.method}_seed{r.seed}": (RunFolder(r.path).read_provenance() or {}).get("sessions") for r in in_s}
    known = [sessions[-1] for sessions in records.values() if sessions]
    unknown = [name for name, sessions in records.items() if not sessions]
    notes = differences(known)
    if known and unknown:
        notes.append(f"unknown for {len(unknown)} run{'s' * (len(unknown) != 1)} without provenance.json "
                     f"({', '.join(unknown)})")
    return f"Provenance differs between runs: {'; '.join(notes)}" if notes else None


def run_minutes(run: Run) -> float | None:
    """Minutes of rounds of a run (setup, training, evaluation); None for a run from before the timing."""
    return run.results["total_time_s"] / 60 if "total_time_s" in run.results else None


def commit_text(session: dict[str, Any]) -> str:
    """A provenance session's commit as the report shows it: COMMIT_CHARS of the hash, `+dirty` for
    uncommitted changes, `?` when unknown."""
    return f"{str(session.get('commit') or '?')[:COMMIT_CHARS]}{'+dirty' if session.get('dirty') else ''}"


def runs_section(runs: list[Run], scenarios: list[str], methods: list[str]) -> list[str]:
    """Per scenario and method: the seeds, minutes of rounds per run, and the code and dates they ran
    on (every session of every run, from provenance.json; `+dirty` = uncommitted changes)."""
    rows = []
    for s in scenarios:
        for m in methods:
            cell = sorted((r for r in runs if r.scenario == s and r.method == m), key=lambda r: r.seed)
            if not cell:
                continue
            minutes = [t for r in cell if (t := run_minutes(r)) is not None]
            commits, dates, unknown = set(), set(), 0
            for r in cell:
                sessions = (RunFolder(r.path).read_provenance() or {}).get("sessions") or []
                unknown += not sessions
                for sess in sessions:
                    commits.add(commit_text(sess))
                    dates.add(str(sess.get("time", ""))[:10])
            commit = ", ".join(sorted(commits)) + (f" ({unknown} unrecorded)" if unknown and commits else "")
            time_text = (f"{np.mean(minutes):.1f} ({min(minutes):.1f}-{max(minutes):.1f})" if len(minutes) > 1
                         else f"{minutes[0]:.1f}" if minutes else DASH)
            rows.append([s, m, " ".join(str(r.seed) for r in cell), time_text, commit or DASH,
                         ", ".join(sorted(d for d in dates if d)) or DASH])
    return ["", "## Runs", "",
            "Minutes of rounds per run (setup, training, evaluation; not process start-up), mean (min-max) over "
            "seeds (what else ran on the machine is not recorded: compare times of one session), and the code and dates "
            "each cell ran on (every session of a resumed run counts):", "",
            _md_table(["scenario", "method", "seeds", "minutes per run", "commit", "dates"], rows), "",
            "Each run folder's `config.json` holds the run's resolved settings; "
            "`python -m fedrouter.runtime.simulate --config <run folder>/config.json output_dir=<another folder>` "
            "reruns that one run."]


def markdown_report(runs: list[Run], output_dir: Path, reference: str | None = None) -> str:
    reference = reference or default_algorithm()  # the registry's proposed method
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    methods = ordered({r.method for r in runs}, method_order())
    out = [f"# Scenario matrix: {output_dir}", "",
           "Final-round scores, mean ± sample std (ddof=1) over seeds; n = completed seeds; "
           f"{DASH} = no completed run (as a std: a single seed). Gain = ({reference} - baseline) / baseline "
           "of the means.", "", "## Scenarios", ""]
    rows, mismatches, own_rows = [], [], []
    for s in scenarios:
        cfg, problems, own = scenario_settings(runs, s, reference)
        mismatches += problems
        own_rows += [[s, m, own[m]] for m in ordered(own, method_order())]
        rows.append([s, cfg.split_strategy, cfg.test_distribution, str(cfg.num_clients), str(cfg.num_rounds),
                     str(cfg.max_steps), cfg.model_name_or_path])
    out.append(_md_table(["scenario", "split", "tested on", "clients", "rounds", "steps/round", "model"], rows))
    out += ["", "Each method's own settings:", "", _md_table(["scenario", "method", "fed_alg: settings"], own_rows)]
    if mismatches:
        out += ["", "**Settings differ within a scenario** (the comparison is not like for like):", ""]
        out += [f"- {m}" for m in mismatches]
    provenance = [f"- {s}: {note}" for s in scenarios if (note := provenance_note(runs, s))]
    out += ["", *provenance] if provenance else []
    metrics = report_metrics(runs)
    for key in metrics:
        stats = cell_stats(runs, key)
        g = gains(stats, reference)
        base = zero_shot_stats(runs, key)
        base_row = [[ZERO_SHOT] + [str(base[s]) if s in base else DASH for s in scenarios]] if base else []
        out += ["", f"## {metric_title(key)}", "",
                _md_table(["method", *scenarios], base_row + [[m] + [str(stats[(s, m)]) if (s, m) in stats else DASH
                                                                     for s in scenarios] for m in methods])]
        baselines = [m for m in methods if m != reference]
        if any(cell in g for cell in ((s, m) for s in scenarios for m in baselines)):
            out += ["", f"Relative gain of {reference} ({display_name(key)}):", "",
                    _md_table(["baseline", *scenarios],
                              [[m] + [_gain_text(g[(s, m)]) if (s, m) in g else DASH for s in scenarios]
                               for m in baselines])]
        paired = paired_differences(runs, key, reference)
        if paired:
            out += ["", f"Paired difference {reference} - baseline ({display_name(key)}), per seed on the same split and "
                    "seed: mean [95 % t interval over seeds] (n seeds); * = the interval excludes 0:", "",
                    _md_table(["baseline", *scenarios],
                              [[m] + [str(paired[(s, m)][0]) if (s, m) in paired else DASH for s in scenarios]
                               for m in baselines])]
    traffic = traffic_stats(runs)
    if traffic:
        out += ["", "## Communication", "",
                "MB per run (10^6 bytes of tensor values: adapters, centroids, ...; server to clients plus clients "
                "to server, all rounds), mean ± std over seeds:", "",
                _md_table(["method", *scenarios], [[m] + [
                    f"{traffic[(s, m)].mean:.2f} ± {DASH if traffic[(s, m)].std is None else f'{traffic[(s, m)].std:.2f}'}"
                    if (s, m) in traffic else DASH for s in scenarios] for m in methods])]
    out += per_task_section(runs, scenarios, metrics)
    out += seen_unseen_section(runs, scenarios, reference, metrics[0])
    out += runs_section(runs, scenarios, methods)
    missing = incomplete_runs(output_dir)
    if missing:
        out += ["", f"Run folders without results (running, interrupted or failed; not counted): {', '.join(missing)}"]
    return "\n".join(out) + "\n"


def per_task_section(runs: list[Run], scenarios: list[str], metrics: list[str]) -> list[str]:
    """Per scenario, each method's score per task, each task under the first metric that scores it
    (the headline's table lists every scenario; a task_metrics task scored by other metrics only
    follows under its own)."""
    out: list[str] = []
    shown: dict[str, set[str]] = defaultdict(set)  # scenario -> tasks already in a table
    for i, metric in enumerate(metrics):
        tables = []
        for s in scenarios:
            in_s = [r for r in runs if r.scenario == s]
            tasks = [t for t in task_names(in_s, metric) if t not in shown[s]]
            shown[s].update(tasks)
            if not tasks and i:
                continue
            per_task = {t: cell_stats(in_s, f"{metric}/{t}") for t in tasks}
            zero = {t: zero_shot_stats(in_s, f"{metric}/{t}") for t in tasks}
            tables += ["", f"### {s}", "",
                       _md_table(["method", *tasks], [[ZERO_SHOT] + [str(zero[t][s]) if s in zero[t] else DASH for t in tasks]]
                         + [[m] + [str(per_task[t][(s, m)]) if (s, m) in per_task[t] else DASH
                                   for t in tasks] for m in ordered({r.method for r in in_s}, method_order())])]
        if tables:
            out += ["", f"## Per task ({display_name(metric)})", *tables]
    return out


def seen_unseen_section(runs: list[Run], scenarios: list[str], reference: str, metric: str) -> list[str]:
    """Scenarios with tasks no client trained on: each method's headline score on seen-task and on
    unseen-task test samples (each the mean over clients of the client's mean, as the main score)."""
    with_unseen = [s for s in scenarios if any(f"{metric}/unseen" in r.results["final"] for r in runs if r.scenario == s)]
    if not with_unseen:
        return []
    name = display_name(metric)
    seen, unseen = cell_stats(runs, f"{metric}/seen"), cell_stats(runs, f"{metric}/unseen")
    methods = ordered({r.method for r in runs if r.scenario in with_unseen}, method_order())
    left_out = {s: read_config(next(r for r in runs if r.scenario == s)).to_dict().get("unseen_tasks", "")
                for s in with_unseen}

    def cell(s: str, m: str) -> str:
        if (s, m) not in unseen:
            return DASH
        spread = DASH if unseen[(s, m)].std is None else f"{unseen[(s, m)].std:.4f}"  # a single seed has none
        return f"{seen[(s, m)].mean:.4f} / {unseen[(s, m)].mean:.4f} ± {spread} (n={unseen[(s, m)].n})"

    rows = [[m] + [cell(s, m) for s in with_unseen] for m in methods]
    means = []
    for m in methods:  # the unseen score averaged over the scenarios (left-out tasks) the method ran in
        vals = [unseen[(s, m)].mean for s in with_unseen if (s, m) in unseen]
        means.append([m, f"{np.mean(vals):.4f}" if vals else DASH, str(len(vals))])
    # paired over every (scenario, seed) both methods completed: the left-out tasks pooled
    pooled = []
    paired = paired_differences(runs, f"{metric}/unseen", reference)
    for m in methods:
        diffs = [d for s in with_unseen if (s, m) in paired for d in paired[(s, m)][1].values()]
        if m != reference and diffs:
            pooled.append([m, str(paired_interval(diffs))])
    paired_text = ["", f"Paired difference {reference} - baseline of the unseen-task {name} over every (scenario, "
                   "seed) pair both completed: mean [95 % t interval] (n pairs); * = the interval excludes 0:", "",
                   _md_table(["baseline", f"{reference} - baseline, unseen {name}"], pooled)] if pooled else []
    return ["", f"## Seen and unseen tasks ({name})", "",
            "Tasks no client trained on are scored apart. Cell: seen-task mean / unseen-task mean ± std over "
            f"seeds (n seeds). Unseen tasks per scenario: {', '.join(f'{s}: {left_out[s]}' for s in with_unseen)}.",
            "", _md_table(["method", *with_unseen], rows), "",
            f"Unseen-task {name} averaged over those scenarios:", "",
            _md_table(["method", f"mean unseen {name}", "scenarios"], means), *paired_text]


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


# --- plot data --------------------------------------------------------------------------------------


def scores_by_round(runs: list[Run], key: str) -> dict[str, dict[str, dict[int, list[float]]]]:
    """scenario -> method -> round -> scores over seeds, from metrics.jsonl's evaluation rows."""
    out: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        for row in RunFolder(r.path).read_metrics():
            if row.get("eval") and key in row["eval"]:
                out[r.scenario][r.method][int(row["round"])].append(float(row["eval"][key]))
    return out


# --- entry point ------------------------------------------------------------------------------------


def write_report(output_dir: Path, out_dir: Path, reference: str | None = None) -> list[Path]:
    """Write the tables and plots; returns the paths written."""
    from fedrouter.results import plots

    runs = load_runs(output_dir)
    if not runs:
        raise FileNotFoundError(f"no completed runs <scenario>/<method>_seed<seed>/results.json in {output_dir}")
    reference = reference or default_algorithm()
    written = []
    for name, text in (("results.md", markdown_report(runs, output_dir, reference)),
                       ("results.csv", results_csv(runs, reference)), ("per_task.csv", per_task_csv(runs)),
                       ("paired.csv", paired_csv(runs, reference)), ("runs.csv", runs_csv(runs))):
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    colors = plots.method_colors(ordered({r.method for r in runs}, method_order()))
    headline = report_metrics(runs)[0]
    label = display_name(headline)
    stats = cell_stats(runs, headline)
    for s in scenarios:
        by_method = {m: stats[(s, m)] for m in colors if (s, m) in stats}
        written.append(plots.bar_chart(by_method, colors, f"{s}: final {label}", out_dir / f"bars_{s}.png", label))
    # An algorithm's own figures, from the runs of the reference method (its registry entry's hook).
    ref_runs = sorted((r for r in runs if r.method == reference), key=lambda r: (scenarios.index(r.scenario), r.seed))
    if ref_runs:
        hook = get_algorithm(read_config(ref_runs[0]).fed_alg).report_plots
        if hook is not None:
            written += hook([(r.scenario, r.seed, r.path) for r in ref_runs], out_dir)
    curves = scores_by_round(runs, headline)
    written.append(plots.score_curves({s: curves[s] for s in scenarios}, colors, out_dir / f"{headline}_curves.png",
                                      label))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", help="the scenario matrix's output_dir")
    parser.add_argument("--out", help="where to write the report (default: OUTPUT_DIR/report)")
    parser.add_argument("--reference", help="the method whose gain over the others is reported (default: the "
                        "registry's proposed method)")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    if not output_dir.is_dir():
        print(f"fedrouter.results.report: {output_dir} is not a folder", file=sys.stderr)
        return 1
    out_dir = Path(args.out) if args.out else output_dir / "report"
    try:
        written = write_report(output_dir, out_dir, args.reference)
    except (FileNotFoundError, ConfigError) as exc:
        print(f"fedrouter.results.report: {exc}", file=sys.stderr)
        return 1
    print((out_dir / "results.md").read_text())
    print("report written:\n" + "\n".join(f"  {p}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
