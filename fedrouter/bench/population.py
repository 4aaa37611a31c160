"""Many clients on one machine: a whole federated run at a population of hundreds to a thousand clients (the
clustering step over every client included), its time per phase and its memory.

    python -m fedrouter.bench --population 200,1000 --sampled 20,50 [key=value ...]

Each population runs the registry's proposed method (and any `--methods`) for a few rounds with the given
settings (e.g. dp=central); the report gives the wall time, the setup step's (every client embeds and clusters
its data, the server clusters every centroid), the mean training round, the evaluation of every client, the
driver's (server's) and each Ray worker's peak resident memory.
"""

from __future__ import annotations

import datetime
import resource
from pathlib import Path
from typing import Any

import numpy as np

from fedrouter.bench.report import machine
from fedrouter.bench.runs import federated_run
from fedrouter.config import RunConfig, default_algorithm
from fedrouter.runtime.simulate import parse_overrides
from fedrouter.utils.io import atomic_write_json, atomic_write_text


def population_point(tmp: str, method: str, clients: int, sampled: int, overrides: list[str]) -> dict[str, Any]:
    cfg = RunConfig.from_mapping({"num_rounds": 3, "eval_round": "3", "dataset_sample": max(400, 5 * clients),
                                  **parse_overrides(overrides), "fed_alg": method, "num_clients": clients,
                                  "sample_clients": sampled, "output_dir": tmp, "sim_alias": f"{method}-{clients}"})
    res = federated_run(cfg)
    rows = res.rows
    train = [r["timing"]["train_wall_s"] for r in rows if r["round"] >= 1]
    evals = [r["timing"]["evaluate_wall_s"] for r in rows if "evaluate_wall_s" in r.get("timing", {})]
    setup = next((r["timing"].get("setup", {}).get("wall_s") for r in rows if "setup" in r.get("timing", {})), None)
    peaks = sorted(res.worker_peaks.values())
    return {"method": method, "clients": clients, "sampled": sampled, "rounds": cfg.num_rounds,
            "records_per_client": cfg.dataset_sample * 4 * cfg.train_split / clients,
            "wall_s": res.wall_s, "setup_s": setup, "train_round_s": float(np.mean(train)),
            "evaluate_all_s": float(np.mean(evals)) if evals else None,
            "worker_peak_mb": [p / 2**20 for p in peaks],
            "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "epsilon": rows[-1].get("privacy", {}).get("epsilon") if rows else None,
            "final": rows[-1].get("eval", {}).get("rouge1") if rows else None}


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Many clients on one machine", "", f"`python -m fedrouter.bench{report['argv']}` on {report['date']}, "
             f"commit {report['commit']}; {report['machine']}.", "",
             "| method | clients | sampled/round | records/client | wall (s) | setup (s) | training round (s) | "
             "evaluating every client (s) | worker peak RSS (MB) | driver peak RSS (MB) | epsilon |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for p in report["points"]:
        lines.append(f"| {p['method']} | {p['clients']} | {p['sampled']} | {p['records_per_client']:.0f} | "
                     f"{p['wall_s']:.0f} | {num(p['setup_s'], '.1f')} | {p['train_round_s']:.1f} | "
                     f"{num(p['evaluate_all_s'], '.1f')} | {', '.join(format(m, '.0f') for m in p['worker_peak_mb'])} | "
                     f"{p['driver_peak_mb']:.0f} | {num(p['epsilon'], '.2f')} |")
    lines += ["", "Driver peak: the whole launcher process (server half, Flower, Ray's driver), cumulative over the "
              "runs before it in this report; worker peaks: each Ray worker process running the ClientApp."]
    return "\n".join(lines) + "\n"


def main(populations: list[int], sampled: list[int], methods: list[str], overrides: list[str], out: Path,
         argv: str) -> int:
    import tempfile

    from fedrouter.results.provenance import git_state

    if len(sampled) != len(populations):
        raise SystemExit(f"--sampled needs one value per population ({len(populations)}), got {sampled}")
    points = []
    with tempfile.TemporaryDirectory(prefix="fedrouter-population-") as tmp:
        for method in methods or [default_algorithm()]:
            for n, s in zip(populations, sampled, strict=True):
                points.append(population_point(tmp, method, n, s, overrides))
    commit, dirty = git_state(Path(__file__).resolve().parents[1])
    report = {"argv": argv.rstrip(), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
              "machine": machine(), "commit": f"{commit}{' (with uncommitted changes)' if dirty else ''}",
              "points": points}
    text = markdown(report)
    atomic_write_json(out / "population.json", report)
    atomic_write_text(out / "population.md", text)
    print(text)
    return 0
