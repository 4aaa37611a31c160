"""Seed table of one experiment: `python -m fedrouter.results.summary OUTPUT_DIR --alias NAME [--seeds "0 1"]`
(mean ± std over the given seeds, default every completed one).

Prints the table and writes it to OUTPUT_DIR/NAME_summary.md and NAME_summary.csv."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from fedrouter.metrics import MetricSelection
from fedrouter.results.run_folder import RunFolder
from fedrouter.results.stats import mean_std
from fedrouter.utils.io import atomic_write_text


def aliases(output_dir: Path) -> list[str]:
    """Names of the experiments with at least one completed run folder <alias>_seed<seed> in output_dir."""
    found = {m.group(1) for p in Path(output_dir).glob("*_seed*/results.json")
             if (m := re.fullmatch(r"(.+)_seed-?\d+", p.parent.name))}
    return sorted(found)


def collect(output_dir: Path, alias: str) -> dict[int, dict]:
    """seed -> results.json content, for every completed run folder <alias>_seed<seed>."""
    out = {}
    for p in sorted(Path(output_dir).glob(f"{alias}_seed*/results.json")):
        m = re.fullmatch(rf"{re.escape(alias)}_seed(-?\d+)", p.parent.name)
        if m:
            out[int(m.group(1))] = json.loads(p.read_text())
    return out


def zero_shot(output_dir: Path, alias: str, seeds) -> dict[int, dict[str, float]]:
    """seed -> the round-0 evaluation (the base model before training), where the run had one."""
    found = {seed: RunFolder(Path(output_dir) / f"{alias}_seed{seed}").read_zero_shot() for seed in seeds}
    return {seed: ev for seed, ev in found.items() if ev is not None}


DEFAULT = MetricSelection.from_settings().names  # what run folders from before the metrics settings scored


def run_metrics(output_dir: Path, alias: str, seeds) -> tuple[str, ...]:
    """The metrics the runs scored (each run folder's config.json), the first run's first."""
    names = [m for seed in sorted(seeds)
             for m in MetricSelection.of_config(RunFolder(Path(output_dir) / f"{alias}_seed{seed}").read_config()).names]
    return tuple(dict.fromkeys(names))


def _value(scores: dict[str, float], key: str, fmt: str, missing: str) -> str:
    return format(scores[key], fmt) if key in scores else missing


def _mean_std(scores: list[dict[str, float]], key: str) -> str:
    """mean ± std of `key` over the score dicts that have it (a metric no client scored has none)."""
    values = [s[key] for s in scores if key in s]
    return mean_std(values) if values else "–"


def seed_table(results: dict[int, dict], base: dict[int, dict[str, float]] | None = None,
               metrics: tuple[str, ...] = DEFAULT) -> str:
    """Final scores per seed, their mean ± std, and (when known) the base model's zero-shot scores."""
    rows = ["| seed | " + " | ".join(metrics) + " |", "| --- |" + " --- |" * len(metrics)]
    for seed, res in sorted(results.items()):
        rows.append(f"| {seed} | " + " | ".join(_value(res["final"], k, ".4f", "–") for k in metrics) + " |")
    rows.append("| mean ± std | " + " | ".join(_mean_std([r["final"] for r in results.values()], k) for k in metrics) + " |")
    if base:
        rows.append("| base model, zero-shot (round 0), mean ± std | "
                    + " | ".join(_mean_std(list(base.values()), k) for k in metrics) + " |")
    return "\n".join(rows)


def seed_csv(results: dict[int, dict], base: dict[int, dict[str, float]],
             metrics: tuple[str, ...] = DEFAULT) -> str:
    """One row per seed: the final score of each metric and, where known, the zero-shot ones."""
    header = ["seed", *metrics, *(f"zero_shot_{k}" for k in metrics)]
    lines = [",".join(header)]
    for seed, res in sorted(results.items()):
        zs = [_value(base[seed], k, ".6f", "") if seed in base else "" for k in metrics]
        lines.append(",".join([str(seed), *(_value(res["final"], k, ".6f", "") for k in metrics), *zs]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output_dir")
    parser.add_argument("--alias", required=True)
    parser.add_argument("--seeds", help="only these seeds (space or comma separated), each of which must have "
                        "completed; default: every completed run of the alias")
    args = parser.parse_args(argv)
    results = collect(Path(args.output_dir), args.alias)
    if args.seeds is not None:
        seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
        missing = [s for s in seeds if s not in results]
        if missing:
            print(f"no completed run {args.alias}_seed{missing[0]} in {args.output_dir} (seeds {missing} missing)",
                  file=sys.stderr)
            return 1
        results = {s: results[s] for s in seeds}
    if not results:
        print(f"no completed runs named {args.alias}_seed* in {args.output_dir}", file=sys.stderr)
        return 1
    base = zero_shot(Path(args.output_dir), args.alias, results)
    metrics = run_metrics(Path(args.output_dir), args.alias, results)
    table = f"{args.alias}: final scores over {len(results)} seed(s)\n\n{seed_table(results, base, metrics)}\n"
    out = Path(args.output_dir)
    atomic_write_text(out / f"{args.alias}_summary.md", table)
    atomic_write_text(out / f"{args.alias}_summary.csv", seed_csv(results, base, metrics))
    print("\n" + table)
    print(f"(written to {out / (args.alias + '_summary.md')} and .csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
