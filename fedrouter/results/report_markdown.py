"""results.md, the report's markdown: the scenarios' settings, per metric a method x scenario table with
the reference method's gains and paired differences, communication, per-task and seen/unseen-task
tables, and the runs behind every cell (seeds, minutes, commits)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fedrouter.algorithms.base import default_algorithm
from fedrouter.config import RunConfig
from fedrouter.metrics import display_name, get_metric
from fedrouter.results.matrix import (
    SCENARIOS,
    Run,
    cell_stats,
    commit_text,
    gains,
    incomplete_runs,
    method_order,
    ordered,
    paired_differences,
    read_config,
    report_metrics,
    run_minutes,
    task_names,
    traffic_stats,
    zero_shot_stats,
)
from fedrouter.results.provenance import differences
from fedrouter.results.run_folder import RunFolder, config_differences
from fedrouter.results.stats import paired_interval

PER_RUN_KEYS = {"fed_alg", "sim_alias", "seed", "output_dir"}  # settings allowed to differ within a scenario
DASH = "–"
ZERO_SHOT = "base model, zero-shot (round 0)"


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
    out += privacy_section(runs, scenarios, methods, metrics[0])
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


def privacy_points(runs: list[Run], metric: str) -> dict[str, list[tuple[float, float, int]]]:
    """Per method, (epsilon spent, final score, seed) of every run; runs without dp at epsilon = inf."""
    out: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for r in runs:
        eps = r.results.get("privacy", {}).get("epsilon", float("inf"))
        if metric in r.results["final"]:
            out[r.method].append((float(eps), float(r.results["final"][metric]), r.seed))
    return out


def privacy_section(runs: list[Run], scenarios: list[str], methods: list[str], metric: str) -> list[str]:
    """Runs with differential privacy: per scenario and method, the epsilon spent (at the run's delta), the noise
    multiplier and the clip, mean over seeds, and whether a budget stopped training."""
    private = [r for r in runs if r.results.get("privacy")]
    if not private:
        return []

    def cell(s: str, m: str) -> str:
        ps = [r.results["privacy"] for r in runs if r.scenario == s and r.method == m and r.results.get("privacy")]
        if not ps:
            return "no DP" if any(r.scenario == s and r.method == m for r in runs) else DASH
        eps = np.mean([p["epsilon"] for p in ps])
        stopped = sum(1 for p in ps if p.get("stopped"))
        return (f"ε {eps:.3g}, σ {np.mean([p['noise_multiplier'] for p in ps]):.3g}, C {ps[0]['clip']:g}"
                + (f", stopped ({stopped})" if stopped else ""))

    first = private[0].results["privacy"]
    return ["", "## Differential privacy", "",
            f"Epsilon spent by the end of each run at delta {first['delta']:.2g} (dp={first['mode']}; the accountant "
            f"assumes {first['sampling']} client sampling, {first['relation']} neighbours: docs/privacy.md), noise "
            "multiplier σ and clip C (mean over seeds):", "",
            _md_table(["method", *scenarios], [[m] + [cell(s, m) for s in scenarios] for m in methods])]
