"""Seed table of one experiment: `python -m fedrouter.summary OUTPUT_DIR --alias NAME` (mean ± std)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from fedrouter.evaluate import ROUGE_KEYS


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


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std (ddof=1, as papers report over seeds); a single value has no std (None)."""
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return float(np.mean(values)), std


def format_mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± " + (f"{std:.4f}" if std is not None else "–")


def mean_std(values: list[float]) -> str:
    return format_mean_std(*mean_and_std(values))


def seed_table(results: dict[int, dict]) -> str:
    rows = ["| seed | " + " | ".join(ROUGE_KEYS) + " |", "| --- |" + " --- |" * len(ROUGE_KEYS)]
    for seed, res in sorted(results.items()):
        rows.append(f"| {seed} | " + " | ".join(f"{res['final'][k]:.4f}" for k in ROUGE_KEYS) + " |")
    rows.append("| mean ± std | " + " | ".join(mean_std([r["final"][k] for r in results.values()]) for k in ROUGE_KEYS) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output_dir")
    parser.add_argument("--alias", required=True)
    args = parser.parse_args(argv)
    results = collect(Path(args.output_dir), args.alias)
    if not results:
        print(f"no completed runs named {args.alias}_seed* in {args.output_dir}", file=sys.stderr)
        return 1
    print(f"\n{args.alias}: final scores over {len(results)} seed(s)\n")
    print(seed_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
