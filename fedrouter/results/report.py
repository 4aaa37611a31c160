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
import math
import sys
from pathlib import Path

from fedrouter.algorithms.base import default_algorithm, get_algorithm
from fedrouter.config import ConfigError
from fedrouter.metrics import display_name
from fedrouter.results.matrix import (
    SCENARIOS,
    cell_stats,
    load_runs,
    method_order,
    ordered,
    read_config,
    report_metrics,
    scores_by_round,
)
from fedrouter.results.report_csv import paired_csv, per_task_csv, results_csv, runs_csv
from fedrouter.results.report_markdown import markdown_report, privacy_points
from fedrouter.utils.io import atomic_write_text


def write_report(output_dir: Path, out_dir: Path, reference: str | None = None) -> list[Path]:
    """Write the tables and plots; returns the paths written."""
    from fedrouter.results import plots

    runs = load_runs(output_dir)
    if not runs:
        raise FileNotFoundError(f"no completed runs <scenario>/<method>_seed<seed>/results.json in {output_dir}")
    reference = reference or default_algorithm()
    written = []
    scenarios = ordered({r.scenario for r in runs}, SCENARIOS)
    # An algorithm's own sections and figures, from the runs of the reference method (its registry entry's hooks).
    ref_runs = sorted((r for r in runs if r.method == reference), key=lambda r: (scenarios.index(r.scenario), r.seed))
    ref_alg = get_algorithm(read_config(ref_runs[0]).fed_alg) if ref_runs else None
    ref_list = [(r.scenario, r.seed, r.path) for r in ref_runs]
    markdown = markdown_report(runs, output_dir, reference)
    if ref_alg is not None and ref_alg.report_sections is not None:
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(ref_alg.report_sections(ref_list)).rstrip("\n") + "\n"
    for name, text in (("results.md", markdown),
                       ("results.csv", results_csv(runs, reference)), ("per_task.csv", per_task_csv(runs)),
                       ("paired.csv", paired_csv(runs, reference)), ("runs.csv", runs_csv(runs))):
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    colors = plots.method_colors(ordered({r.method for r in runs}, method_order()))
    headline = report_metrics(runs)[0]
    label = display_name(headline)
    stats = cell_stats(runs, headline)
    for s in scenarios:
        by_method = {m: stats[(s, m)] for m in colors if (s, m) in stats}
        written.append(plots.bar_chart(by_method, colors, f"{s}: final {label}", out_dir / f"bars_{s}.png", label))
    if ref_alg is not None and ref_alg.report_plots is not None:
        written += ref_alg.report_plots(ref_list, out_dir)
    points = privacy_points(runs, headline)
    if any(math.isfinite(e) for pts in points.values() for e, _, _ in pts):
        written.append(plots.privacy_utility(points, colors, out_dir / "privacy_utility.png", label))
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
