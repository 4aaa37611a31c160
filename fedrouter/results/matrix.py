"""The runs of a scenario matrix and their statistics: every completed run folder
`<output_dir>/<scenario>/<method>_seed<seed>/` as a Run, and the per-cell (scenario x method) numbers over
seeds that the report's tables, CSV files and plots show."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedrouter.algorithms.base import algorithms
from fedrouter.config import RunConfig
from fedrouter.metrics import MetricSelection
from fedrouter.results.provenance import COMMIT_CHARS
from fedrouter.results.run_folder import RunFolder
from fedrouter.results.stats import Paired, Stat, mean_and_std, paired_interval
from fedrouter.results.summary import aliases, collect

SCENARIOS = ("interference", "generalization", "single", "iid")  # display order; others follow


@dataclass(frozen=True)
class Run:
    """One completed run folder: where it sits in the matrix and its results.json."""

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


def _natural(name: str) -> tuple:
    """Sort key reading the numbers in a name as numbers (dp_3 < dp_8 < dp_30 < dp_inf)."""
    parts = re.split(r"(\d+(?:\.\d+)?|inf)", name)
    return tuple((0, float(p), "") if re.fullmatch(r"\d+(?:\.\d+)?|inf", p) else (1, 0.0, p) for p in parts if p)


def ordered(names: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    """Names in the preferred order first, the rest after them in natural order (numbers by value)."""
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred), key=_natural)


def read_config(run: Run) -> RunConfig:
    """The run's resolved settings (its config.json; keys this version no longer knows are ignored)."""
    return RunConfig.from_mapping(RunFolder(run.path).read_config() or {}, strict=False)


def run_minutes(run: Run) -> float | None:
    """Minutes of rounds of a run (setup, training, evaluation); None for a run from before the timing."""
    return run.results["total_time_s"] / 60 if "total_time_s" in run.results else None


def commit_text(session: dict[str, Any]) -> str:
    """A provenance session's commit as the report shows it: COMMIT_CHARS of the hash, `+dirty` for
    uncommitted changes, `?` when unknown."""
    return f"{str(session.get('commit') or '?')[:COMMIT_CHARS]}{'+dirty' if session.get('dirty') else ''}"


# --- statistics per cell ----------------------------------------------------------------------------


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


# --- plot data --------------------------------------------------------------------------------------


def scores_by_round(runs: list[Run], key: str) -> dict[str, dict[str, dict[int, list[float]]]]:
    """scenario -> method -> round -> scores over seeds, from metrics.jsonl's evaluation rows."""
    out: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        for row in RunFolder(r.path).read_metrics():
            if row.get("eval") and key in row["eval"]:
                out[r.scenario][r.method][int(row["round"])].append(float(row["eval"][key]))
    return out
