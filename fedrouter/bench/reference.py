"""`python -m fedrouter.bench --reference PRESET [key=value ...]`: one run of a preset (the configuration
the paper authors' code was timed with: configs/bench-reference.toml), measured the way their figures
were taken, and put beside them: wall time, peak memory of every process (this driver, which also runs
the server, and each Ray worker), base-model loads, bytes per adapter message, the phase breakdown and
the decoding roofline of its generation."""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path
from typing import Any

from fedrouter.metrics import MetricSelection, scores_text

# The reference code's figures on this configuration, printed beside ours (docs/benchmark.md, "The reference
# code's configuration": a 2-core machine, the wall times of two runs).
REFERENCE = {"wall_s": (549.0, 558.0), "driver_peak_gb": 10.0, "loads": 39, "adapter_message_mb": 228.0,
             "generation_share": 0.60}


def measure(preset: str, overrides: list[str], tmp: str) -> dict[str, Any]:
    import torch

    from fedrouter.bench import runs
    from fedrouter.bench.inference import roofline
    from fedrouter.models.backbone import get_backbone
    from fedrouter.runtime.server_app import run_traffic
    from fedrouter.runtime.simulate import build_config

    cfg = build_config(preset, [*overrides, f"output_dir={tmp}", "sim_alias=reference"])
    run = runs.federated_run(cfg)
    rows = run.rows
    loads = runs.workers(rows)
    phases = runs.phase_totals(rows)
    worker_s = sum(v for k, v in phases.items() if k in runs.CLIENT_PHASES)
    # one training reply per client and round: the adapter message (FedRouter n_clusters=1: one adapter)
    train_up = [up for r in rows if r["round"] >= 1 and r.get("timing", {}).get("train")
                for cid, (_, up) in r["comm"]["clients"].items() if cid in r["timing"]["train"]]
    down = [d for r in rows if r["round"] >= 1 for d, _ in r["comm"]["clients"].values() if d]
    # decoding against the machine's limit: the workers' generate phase and decode steps
    steps = int(sum(c.get("decode_steps", 0) for r in rows for c in r.get("timing", {}).get("evaluate", {}).values()))
    row_steps = int(sum(c.get("decode_row_steps", 0) for r in rows
                        for c in r.get("timing", {}).get("evaluate", {}).values()))
    torch.set_num_threads(cfg.client_resources_cpus)
    line = roofline(get_backbone(cfg).model, phases.get("generate", 0.0), steps, row_steps) if steps else None
    return {
        "config": cfg.to_dict(),
        "wall_s": run.wall_s,
        "rounds_wall_s": sum(r["time_s"] for r in rows),
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peaks_mb": [run.worker_peaks[p] / 2**20 for p in sorted(run.worker_peaks)],
        "loads": sum(loads.values()),
        "loads_per_worker": sorted(loads.values()),
        "adapter_message_mb": max(train_up) / 1e6 if train_up else 0.0,
        "largest_message_down_mb": max(down) / 1e6 if down else 0.0,
        "communication_mb": run_traffic(rows)["total_bytes"] / 1e6,
        "phases": phases,
        "generation_share": phases.get("generate", 0.0) / worker_s if worker_s else 0.0,
        "roofline": line,
        "final": next(r["eval"] for r in reversed(rows) if "eval" in r),
    }


def markdown(r: dict[str, Any], argv: str) -> str:
    ref = REFERENCE
    peaks = r["worker_peaks_mb"]
    out = [f"### `python -m fedrouter.bench{argv}` — {r['date']}", "", f"Machine: {r['machine']}.", "",
           "| | ours | reference code |", "| --- | --- | --- |",
           f"| wall time (whole run, incl. start-up) | {r['wall_s']:.0f} s | {ref['wall_s'][0]:.0f} s, {ref['wall_s'][1]:.0f} s |",
           f"| speed-up | {sum(ref['wall_s']) / 2 / r['wall_s']:.1f}x | |",
           f"| peak memory | driver {r['driver_peak_mb']:.0f} MB; workers {', '.join(f'{p:.0f}' for p in peaks)} MB | driver ~{ref['driver_peak_gb']:.0f} GB |",
           f"| base-model loads | {r['loads']} ({r['loads_per_worker']} per worker) | {ref['loads']} |",
           f"| bytes per adapter message | {r['adapter_message_mb']:.3f} MB | {ref['adapter_message_mb']:.0f} MB |",
           f"| generation's share of client compute | {r['generation_share']:.0%} | ~{ref['generation_share']:.0%} |",
           "", f"Rounds' wall time {r['rounds_wall_s']:.0f} s; communication {r['communication_mb']:.2f} MB in all; "
           f"final {scores_text(r['final'], [MetricSelection.of_config(r['config']).headline])}.", "", "| phase | worker-seconds |", "| --- | --- |"]
    out += [f"| {k} | {v:.1f} |" for k, v in r["phases"].items()]
    line = r["roofline"]
    if line:
        out += ["", f"Decoding: {line['decode_steps']} decode steps ({line['row_steps']} row-steps) over "
                f"{line['weight_mb']:.0f} MB of weights; at the measured {line['bandwidth_gb_s']:.1f} GB/s and "
                f"{line['matmul_gflop_s']:.0f} GFLOP/s they need at least {max(line['memory_floor_s'], line['compute_floor_s']):.1f} s "
                f"({line['bound']}-bound); the workers' generate phase took {line['measured_s']:.1f} s: "
                f"**{line['fraction']:.0%} of the limit**."]
    return "\n".join(out) + "\n"


def main(preset: str, overrides: list[str], out: Path, argv: str) -> int:
    from fedrouter.bench.report import write_report

    with tempfile.TemporaryDirectory(prefix="fedrouter-bench-reference-") as tmp:
        report = measure(preset, overrides, tmp)
    report["reference"] = REFERENCE
    write_report(out, "bench_reference", report, lambda r: markdown(r, argv))
    return 0
