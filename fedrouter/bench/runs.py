"""Real federated runs for the benchmark, and what their metrics rows say: phase times, overhead, scaling."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fedrouter.bench.memory import WorkerMemory
from fedrouter.config import RunConfig
from fedrouter.results.run_folder import RunFolder
from fedrouter.steps import cluster
from fedrouter.utils import process_state

CLIENT_PHASES = ("load", "data", "embed", "cluster", "train", "route", "generate", "rouge")
SERVER_PHASES = ("global_cluster", "aggregate")


@dataclass
class RunResult:
    cfg: RunConfig
    rows: list[dict[str, Any]]  # metrics.jsonl
    wall_s: float  # the whole simulate() call: Ray start-up, setup, rounds, shutdown
    worker_peaks: dict[int, int]  # worker pid -> peak RSS (bytes)


def federated_run(cfg: RunConfig) -> RunResult:
    """Run the simulation (Flower + Ray, the real apps) while sampling the workers' memory."""
    from fedrouter.runtime.simulate import simulate

    process_state.clear(cluster)  # the server runs in this process: no k-means fit carried over from an earlier run
    with WorkerMemory() as memory:
        start = time.perf_counter()
        simulate(cfg)
        wall = time.perf_counter() - start
    return RunResult(cfg, RunFolder(cfg.run_dir).read_metrics(), wall, dict(memory.peaks))


def stage_compute(clients: dict[str, dict[str, float]]) -> float:
    """Compute time of one stage (all clients' messages of one kind): each worker process runs its
    messages one after another, the workers run side by side, so: max over workers of the sum of
    the phase seconds of the messages it served."""
    per_worker: dict[float, float] = defaultdict(float)
    for m in clients.values():
        per_worker[m["pid"]] += sum(v for k, v in m.items() if k.startswith("time/"))
    return max(per_worker.values(), default=0.0)


def round_stages(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Wall and compute seconds of the setup step (when the run had one) and of each round."""
    out = []
    first = rows[0]["timing"] if rows else {}
    if "setup" in first:
        s = first["setup"]
        out.append({"stage": "setup", "wall_s": s["wall_s"],
                    "compute_s": stage_compute(s["clients"]) + s["global_cluster_s"]})
    for row in rows:
        t = row["timing"]
        compute = stage_compute(t["train"]) + t["aggregate_s"] + stage_compute(t.get("evaluate", {}))
        out.append({"stage": f"round {row['round']}", "wall_s": row["time_s"], "compute_s": compute,
                    "train_wall_s": t["train_wall_s"], "evaluate_wall_s": t.get("evaluate_wall_s", 0.0)})
    return out


def phase_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase over the whole run: client phases summed over every client message (so
    with several workers they add up to more than the wall time), server phases as measured."""
    totals = dict.fromkeys(CLIENT_PHASES + SERVER_PHASES, 0.0)
    for row in rows:
        t = row["timing"]
        stages = [t["train"], t.get("evaluate", {})]
        if "setup" in t:
            stages.append(t["setup"]["clients"])
            totals["global_cluster"] += t["setup"]["global_cluster_s"]
        totals["aggregate"] += t["aggregate_s"]
        for clients in stages:
            for m in clients.values():
                for key, value in m.items():
                    if key.startswith("time/"):
                        totals[key.split("/", 1)[1]] = totals.get(key.split("/", 1)[1], 0.0) + value
    return totals


def overhead(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Wall time of the federated rounds / their compute (client phases on the critical path plus
    server aggregation); the rest is Flower dispatch, (de)serialization, record building, client
    store I/O and checkpointing. The setup step is reported beside it, not in the ratio."""
    stages = round_stages(rows)
    rounds = [s for s in stages if s["stage"] != "setup"]
    wall, compute = sum(s["wall_s"] for s in rounds), sum(s["compute_s"] for s in rounds)
    return {"ratio": wall / compute if compute else float("nan"), "rounds_wall_s": wall,
            "rounds_compute_s": compute, "overhead_s": wall - compute,
            "setup_overhead_s": sum(s["wall_s"] - s["compute_s"] for s in stages if s["stage"] == "setup"),
            "stages": stages}


def workers(rows: list[dict[str, Any]]) -> dict[int, int]:
    """Worker pid -> the highest base-model load count any of its messages reported."""
    loads: dict[int, int] = {}
    for row in rows:
        t = row["timing"]
        stages = [t["train"], t.get("evaluate", {})] + ([t["setup"]["clients"]] if "setup" in t else [])
        for clients in stages:
            for m in clients.values():
                pid = int(m["pid"])
                loads[pid] = max(loads.get(pid, 0), int(m["load_count"]))
    return loads


def scaling_point(cfg: RunConfig, n: int) -> dict[str, Any]:
    """One round with n clients, each with as many records as in the 8-client default (the pool
    per task grows with n), a short evaluation so the round is mostly training."""
    per_task = max(cfg.dataset_sample, cfg.dataset_sample * n // 8)
    run = federated_run(cfg.replace(num_clients=n, sample_clients=n, dataset_sample=per_task, num_rounds=1,
                                    eval_round="1", max_eval_size=4, max_new_tokens=8, sim_alias=f"scale{n}"))
    t = run.rows[0]["timing"]
    train = [m["time/train"] for m in t["train"].values()]
    return {"clients": n, "dataset_sample": per_task, "workers": len(workers(run.rows)),
            "round_wall_s": run.rows[0]["time_s"], "train_wall_s": t["train_wall_s"],
            "train_per_client_s": sum(train) / len(train), "aggregate_s": t["aggregate_s"],
            "global_cluster_s": t["setup"]["global_cluster_s"],
            "worker_peak_rss_mb": sum(run.worker_peaks.values()) / 2**20, "run_wall_s": run.wall_s}
