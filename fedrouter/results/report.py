"""Comparison report of a scenario matrix: `python -m fedrouter.results.report OUTPUT_DIR [--out DIR]`.

Reads the run folders `<OUTPUT_DIR>/<scenario>/<method>_seed<seed>/` that
training_scripts/run_paper_experiments.sh writes, and writes to DIR (default OUTPUT_DIR/report):
results.md and results.csv (final ROUGE-1/2/L per method x scenario, mean ± sample std over seeds,
and FedRouter's relative gain over each baseline), per_task.csv (the same per task), and the plots
of fedrouter.results.plots. Only completed runs (with a results.json) count; missing cells show as "–".

The t-SNE plot reads what FedRouter's clients saved at evaluation (test embeddings and the adapter
each sample was routed to, `clients/client_<i>/eval_r<round>.npz`). That is client-private data:
in simulation it sits on the researcher's own machine and is read here as local analysis; in a
real federation it never leaves the clients and no server could draw this plot.
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

from fedrouter.algorithms.client_state import ClientStore
from fedrouter.config import RunConfig
from fedrouter.data.builtin import TASKS
from fedrouter.results.run_folder import RunFolder, config_differences
from fedrouter.results.stats import Stat, mean_and_std
from fedrouter.results.summary import aliases, collect
from fedrouter.steps.evaluate import ROUGE_KEYS
from fedrouter.utils.io import atomic_write_text

SCENARIOS = ("interference", "generalization", "single", "iid")  # display order; others follow
METHODS = ("fedit", "local", "fedcluster", "fedsa", "feddpa", "fedrouter")  # the paper's column order
REFERENCE = "fedrouter"  # the method whose relative gain over every other is reported
METRIC_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
PER_RUN_KEYS = {"fed_alg", "sim_alias", "seed", "output_dir"}  # settings allowed to differ within a scenario
# The evaluation router is a method's own choice (FedRouter's global router vs each client's own
# cluster, run_generalization.sh): listed per method, not flagged. What clients are tested on must
# still match, so it is compared resolved (evaluation_mode can set it).
ROUTER_KEYS = {"router", "evaluation_mode"}
DASH = "–"
ZERO_SHOT = "base model, zero-shot (round 0)"


@dataclass(frozen=True)
class Run:
    scenario: str
    method: str
    seed: int
    path: Path
    results: dict[str, Any]


# --- reading ----------------------------------------------------------------------------------------


def load_runs(output_dir: Path) -> list[Run]:
    """Every completed run folder <output_dir>/<scenario>/<method>_seed<seed>/."""
    runs = []
    for scenario_dir in sorted(p for p in Path(output_dir).iterdir() if p.is_dir()):
        for method in aliases(scenario_dir):
            for seed, results in sorted(collect(scenario_dir, method).items()):
                runs.append(Run(scenario_dir.name, method, seed, scenario_dir / f"{method}_seed{seed}", results))
    return runs


def incomplete_runs(output_dir: Path) -> list[str]:
    """<scenario>/<method>_seed<seed> folders without results.json (running, interrupted or failed)."""
    return sorted(f"{p.parent.name}/{p.name}" for p in Path(output_dir).glob("*/*_seed*")
                  if p.is_dir() and re.fullmatch(r".+_seed-?\d+", p.name) and not (p / "results.json").exists())


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


def gains(stats: dict[tuple[str, str], Stat], reference: str = REFERENCE) -> dict[tuple[str, str], float | None]:
    """(scenario, baseline) -> relative gain of the reference's mean over the baseline's mean."""
    out = {}
    for (scenario, method), stat in stats.items():
        ref = stats.get((scenario, reference))
        if method != reference and ref is not None:
            out[(scenario, method)] = relative_gain(ref.mean, stat.mean)
    return out


def task_names(runs: list[Run]) -> list[str]:
    return ordered({k.split("/", 1)[1] for r in runs for k in r.results["final"] if k.startswith("rouge1/")}, TASKS)


# --- tables -----------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _gain_text(gain: float | None) -> str:
    return DASH if gain is None else f"{gain * 100:+.1f} %"


def scenario_settings(runs: list[Run], scenario: str) -> tuple[RunConfig, list[str], dict[str, str]]:
    """The scenario's resolved settings (from the reference method's run when there is one), every
    setting that differs between its runs beyond method and seed (should be none), and the router
    of each method whose router differs from the reference's."""
    folders = [r for r in runs if r.scenario == scenario]
    folders.sort(key=lambda r: (r.method != REFERENCE, r.method, r.seed))
    configs = [(r, RunConfig.from_mapping(RunFolder(r.path).read_config() or {})) for r in folders]

    def compared(cfg: RunConfig) -> dict[str, Any]:
        values = {k: v for k, v in cfg.to_dict().items() if k not in PER_RUN_KEYS | ROUTER_KEYS}
        return {**values, "test_distribution": cfg.resolved_test_distribution}

    base_cfg = configs[0][1]
    problems, routers = [], {}
    for r, cfg in configs[1:]:
        problems += [f"{scenario}/{r.method}_seed{r.seed}: {d}" for d in config_differences(compared(base_cfg), compared(cfg))]
        if cfg.resolved_router != base_cfg.resolved_router:
            routers[r.method] = cfg.resolved_router
    return base_cfg, problems, routers


def markdown_report(runs: list[Run], output_dir: Path) -> str:
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    methods = ordered({r.method for r in runs}, METHODS)
    out = [f"# Scenario matrix: {output_dir}", "",
           "Final-round scores, mean ± sample std (ddof=1) over seeds; n = completed seeds; "
           f"{DASH} = no completed run (as a std: a single seed). Gain = ({REFERENCE} - baseline) / baseline "
           "of the means.", "", "## Scenarios", ""]
    rows, mismatches, variants = [], [], []
    for s in scenarios:
        cfg, problems, routers = scenario_settings(runs, s)
        mismatches += problems
        variants += [f"{s}/{m}: router={r}" for m, r in sorted(routers.items())]
        rows.append([s, cfg.split_strategy, cfg.resolved_test_distribution, cfg.resolved_router, cfg.n_clusters,
                     cfg.global_n_clusters, str(cfg.num_clients), str(cfg.num_rounds), str(cfg.max_steps),
                     cfg.model_name_or_path])
    out.append(_md_table(["scenario", "split", "tested on", "router", "local k", "global K", "clients", "rounds",
                          "steps/round", "model"], rows))
    if variants:
        out += ["", f"Routers other than the scenario's (FedRouter variants): {', '.join(variants)}."]
    if mismatches:
        out += ["", "**Settings differ within a scenario** (the comparison is not like for like):", ""]
        out += [f"- {m}" for m in mismatches]
    for key in ROUGE_KEYS:
        stats = cell_stats(runs, key)
        g = gains(stats)
        base = zero_shot_stats(runs, key)
        base_row = [[ZERO_SHOT] + [str(base[s]) if s in base else DASH for s in scenarios]] if base else []
        out += ["", f"## {METRIC_NAMES[key]}", "",
                _md_table(["method", *scenarios], base_row + [[m] + [str(stats[(s, m)]) if (s, m) in stats else DASH
                                                                     for s in scenarios] for m in methods])]
        baselines = [m for m in methods if m != REFERENCE]
        if any(cell in g for cell in ((s, m) for s in scenarios for m in baselines)):
            out += ["", f"Relative gain of {REFERENCE} ({METRIC_NAMES[key]}):", "",
                    _md_table(["baseline", *scenarios],
                              [[m] + [_gain_text(g[(s, m)]) if (s, m) in g else DASH for s in scenarios]
                               for m in baselines])]
    out += ["", "## Per task (ROUGE-1)"]
    for s in scenarios:
        in_s = [r for r in runs if r.scenario == s]
        tasks = task_names(in_s)
        per_task = {t: cell_stats(in_s, f"rouge1/{t}") for t in tasks}
        zero = {t: zero_shot_stats(in_s, f"rouge1/{t}") for t in tasks}
        out += ["", f"### {s}", "",
                _md_table(["method", *tasks], [[ZERO_SHOT] + [str(zero[t][s]) if s in zero[t] else DASH for t in tasks]]
                  + [[m] + [str(per_task[t][(s, m)]) if (s, m) in per_task[t] else DASH
                            for t in tasks] for m in ordered({r.method for r in in_s}, METHODS)])]
    missing = incomplete_runs(output_dir)
    if missing:
        out += ["", f"Run folders without results (running, interrupted or failed; not counted): {', '.join(missing)}"]
    return "\n".join(out) + "\n"


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def results_csv(runs: list[Run]) -> str:
    rows = []
    scenarios, methods = ordered({r.scenario for r in runs}, SCENARIOS), ordered({r.method for r in runs}, METHODS)
    for key in ROUGE_KEYS:
        stats = cell_stats(runs, key)
        g = gains(stats)
        for s in scenarios:
            for m in methods:
                if (s, m) in stats:
                    st = stats[(s, m)]
                    rows.append([s, m, key, st.mean, st.std, st.n, g.get((s, m))])
    return _csv(["scenario", "method", "metric", "mean", "std", "n_seeds", f"{REFERENCE}_gain"], rows)


def per_task_csv(runs: list[Run]) -> str:
    rows = []
    methods = ordered({r.method for r in runs}, METHODS)
    for s in ordered({r.scenario for r in runs}, SCENARIOS):
        in_s = [r for r in runs if r.scenario == s]
        for t in task_names(in_s):
            for key in ROUGE_KEYS:
                stats = cell_stats(in_s, f"{key}/{t}")
                rows += [[s, m, t, key, st.mean, st.std, st.n] for m in methods if (st := stats.get((s, m)))]
    return _csv(["scenario", "method", "task", "metric", "mean", "std", "n_seeds"], rows)


# --- plot data --------------------------------------------------------------------------------------


def eval_embeddings(run_dir: Path) -> tuple[np.ndarray, list[str], np.ndarray, int] | None:
    """(test embeddings, true tasks, routed adapter, round) of every client's last saved evaluation."""
    stores = [ClientStore(p.parent, int(p.name.split("_")[1])) for p in Path(run_dir).glob("clients/client_*")]
    rounds = [r for st in stores for r in st.eval_rounds()]
    if not rounds:
        return None
    rnd = max(rounds)
    emb, tasks, routed = [], [], []
    for st in sorted((st for st in stores if rnd in st.eval_rounds()), key=lambda st: st.dir.name):
        arrays, meta = st.load_eval(rnd)
        emb.append(arrays["embeddings"])
        routed.append(arrays["routed"])
        tasks += meta["tasks"]
    return np.concatenate(emb), tasks, np.concatenate(routed), rnd


def silhouette_curves(runs: list[Run]) -> dict[str, dict[str, dict[int, list[float]]]]:
    """scenario -> {"local": k -> scores over clients and seeds, "global": k -> scores over seeds}."""
    out: dict[str, dict[str, dict[int, list[float]]]] = {}
    for r in runs:
        diag = RunFolder(r.path).read_diagnostics()
        if not diag:
            continue
        curves = out.setdefault(r.scenario, {"local": defaultdict(list), "global": defaultdict(list)})
        for per_client in diag.get("local_silhouette", {}).values():
            for k, score in per_client.items():
                curves["local"][int(k)].append(float(score))
        for k, score in diag.get("global_silhouette", {}).items():
            curves["global"][int(k)].append(float(score))
    return out


def rouge_by_round(runs: list[Run], key: str = "rouge1") -> dict[str, dict[str, dict[int, list[float]]]]:
    """scenario -> method -> round -> scores over seeds, from metrics.jsonl's evaluation rows."""
    out: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        for row in RunFolder(r.path).read_metrics():
            if row.get("eval"):
                out[r.scenario][r.method][int(row["round"])].append(float(row["eval"][key]))
    return out


# --- entry point ------------------------------------------------------------------------------------


def write_report(output_dir: Path, out_dir: Path) -> list[Path]:
    """Write the tables and plots; returns the paths written."""
    from fedrouter.results import plots

    runs = load_runs(output_dir)
    if not runs:
        raise FileNotFoundError(f"no completed runs <scenario>/<method>_seed<seed>/results.json in {output_dir}")
    written = []
    for name, text in (("results.md", markdown_report(runs, output_dir)), ("results.csv", results_csv(runs)),
                       ("per_task.csv", per_task_csv(runs))):
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    colors = plots.method_colors(ordered({r.method for r in runs}, METHODS))
    stats = cell_stats(runs, "rouge1")
    for s in scenarios:
        by_method = {m: stats[(s, m)] for m in colors if (s, m) in stats}
        written.append(plots.bar_chart(by_method, colors, f"{s}: final ROUGE-1", out_dir / f"bars_{s}.png"))
        ref = sorted((r for r in runs if r.scenario == s and r.method == REFERENCE), key=lambda r: r.seed)
        data = eval_embeddings(ref[0].path) if ref else None
        if data is not None:
            emb, tasks, routed, rnd = data
            title = f"{s}: {REFERENCE} test embeddings (seed {ref[0].seed}, round {rnd})"
            path = plots.tsne(emb, tasks, routed, title, out_dir / f"tsne_{s}.png", seed=ref[0].seed)
            written += [path] if path else []
    sil = silhouette_curves([r for r in runs if r.method == REFERENCE])
    if sil:
        written.append(plots.silhouette({s: sil[s] for s in scenarios if s in sil}, out_dir / "silhouette.png"))
    curves = rouge_by_round(runs)
    written.append(plots.rouge_curves({s: curves[s] for s in scenarios}, colors, out_dir / "rouge1_curves.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", help="the scenario matrix's output_dir")
    parser.add_argument("--out", help="where to write the report (default: OUTPUT_DIR/report)")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    if not output_dir.is_dir():
        print(f"fedrouter.results.report: {output_dir} is not a folder", file=sys.stderr)
        return 1
    out_dir = Path(args.out) if args.out else output_dir / "report"
    try:
        written = write_report(output_dir, out_dir)
    except FileNotFoundError as exc:
        print(f"fedrouter.results.report: {exc}", file=sys.stderr)
        return 1
    print((out_dir / "results.md").read_text())
    print("report written:\n" + "\n".join(f"  {p}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
