"""The benchmark's verdicts (ratio vs target) and its markdown rendering."""

from __future__ import annotations

from typing import Any

# name -> (what is measured, target as text, passes(value))
TARGETS: dict[str, tuple[str, str, Any]] = {
    "overhead": ("overhead: wall time of the federated rounds / their compute ({clients} clients)", "<= 1.15",
                 lambda v: v <= 1.15),
    # information only: the ratio is about 1 + base-model loads x load time / our evaluation time, so it
    # follows how a load compares with evaluation on the machine and model, not the code (docs/benchmark.md)
    "routed_eval_speedup": ("routed-evaluation speedup: reference way / ours, same samples and adapters",
                            "information", None),
    "generation_efficiency": ("generation efficiency: our throughput / plain batched `model.generate`", ">= 0.9",
                              lambda v: v >= 0.9),
    "memory": ("memory: workers' peak RSS / (workers x one process with one base model + adapters)", "<= 1.2",
               lambda v: v <= 1.2),
    "deployment": ("deployment / simulation: round wall times of the same run on the Deployment Engine (loopback, one "
                   "SuperNode per client) and on the simulation (`--deployment`)", "<= 1.2", lambda v: v <= 1.2),
    "server_s": ("server at 1,000 clients x 4 centroids x 2,048 dims: global clustering + aggregation (s; "
                 "Flower's deserialization of the adapters reported apart)", "< 2 s", lambda v: v < 2.0),
}


PHASE_LABELS = {
    "load": "load: tokenizer + base model + PEFT wrap (once per worker)",
    "data": "data: partition + tokenization (once per client per worker)",
    "embed": "embed: training set at setup, test set at evaluation",
    "cluster": "local clustering: k-means + silhouette curve",
    "train": "training",
    "route": "routing: nearest centroid",
    "generate": "generation",
    "rouge": "scoring: the run's metrics (ROUGE by default)",
    "global_cluster": "server: global clustering",
    "aggregate": "server: aggregation",
}


def verdicts(values: dict[str, float], clients: int) -> list[dict[str, Any]]:
    return [{"name": name, "what": what.format(clients=clients), "value": values[name], "target": target,
             "pass": None if ok is None else bool(ok(values[name]))}
            for name, (what, target, ok) in TARGETS.items() if name in values]


def _phase_order(phases: dict[str, float]) -> list[str]:
    """Pipeline order (load -> ... -> server), whatever order the run's rows listed them in."""
    known = list(PHASE_LABELS)
    return sorted(phases, key=lambda k: known.index(k) if k in known else len(known))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    fmt = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in fmt])


def markdown(r: dict[str, Any]) -> str:
    out = [f"### `python -m fedrouter.bench{r['argv']}` — {r['date']}", "",
           f"Machine: {r['machine']}. Bench wall time: {r['bench_wall_s']:.0f} s.", "",
           f"Run measured: {r['run']}", ""]
    out += [_table(["ratio", "measured", "target", ""],
                   [[v["what"], f"{v['value']:.2f}", v["target"], {True: "PASS", False: "FAIL", None: "–"}[v["pass"]]] for v in r["ratios"]])]
    ov = r["overhead"]
    out += ["", f"**Phases of the {r['clients']}-client run** (client phases summed over all client messages, in worker-seconds; "
            "server phases and overhead in wall seconds):", ""]
    out += [_table(["phase", "seconds"], [[PHASE_LABELS.get(k, k), r["phases"][k]] for k in _phase_order(r["phases"])]
                   + [["Flower/serialization overhead, rounds (wall - compute)", ov["overhead_s"]],
                      ["Flower/serialization overhead, setup step (incl. worker start-up)", ov["setup_overhead_s"]]])]
    out += ["", _table(["stage", "wall s", "compute s (critical path)", "wall / compute"],
                       [[s["stage"], s["wall_s"], s["compute_s"], f"{s['wall_s'] / s['compute_s']:.2f}"]
                        for s in ov["stages"]])]
    re_, ge, mem = r["routed_eval"], r["generation"], r["memory"]
    out += ["", f"**Routed evaluation** ({re_['samples']} test samples, {r['clients']} clients): ours "
            f"{re_['ours_s']:.2f} s, reference way {re_['reference_s']:.2f} s, of which "
            f"{re_['reference_load_s']:.2f} s in {re_['reference_loads']} base-model loads (+ PEFT wrap): "
            f"{1000 * re_['reference_load_s'] / re_['reference_loads']:.0f} ms each. Same routing for "
            f"{re_['same_routing']:.0%} of samples, identical predictions for {re_['same_predictions']:.0%}.",
            "", f"**Generation** ({ge['prompts']} prompts): ours {ge['ours_prompts_per_s']:.1f} prompts/s, plain "
            f"{ge['plain_prompts_per_s']:.1f} prompts/s; identical outputs for {ge['same_outputs']:.0%}.",
            *(["", "**Decoding against the hardware limit** (roofline): measured here "
                f"{ge['roofline']['bandwidth_gb_s']:.1f} GB/s memory bandwidth (tensor copy) and "
                f"{ge['roofline']['matmul_gflop_s']:.1f} GFLOP/s fp32 matmul on {ge['roofline']['threads']} thread(s); "
                f"{ge['roofline']['decode_steps']} decode steps ({ge['roofline']['row_steps']} row-steps) over "
                f"{ge['roofline']['weight_mb']:.1f} MB of weights need at least "
                f"{ge['roofline']['memory_floor_s']:.2f} s of weight reads and {ge['roofline']['compute_floor_s']:.2f} s "
                f"of matmuls ({ge['roofline']['bound']}-bound); generation took {ge['roofline']['measured_s']:.2f} s: "
                f"**{ge['roofline']['fraction']:.1%} of the limit** (the measured time includes prefill and "
                "tokenization)."] if "roofline" in ge else []),
            *(["", f"**Routed groups decoded one after another vs in mixed-adapter batches** (every client's routed "
                f"evaluation through the client half, {r['batching']['samples']} samples, "
                f"{r['batching']['mean_groups_per_client']:.1f} groups per client): grouped "
                f"{r['batching']['grouped_s']:.2f} s, mixed {r['batching']['mixed_s']:.2f} s "
                f"({r['batching']['speedup']:.2f}x); identical predictions for {r['batching']['same_predictions']:.0%}; "
                f"`generation_batching=auto` chose mixed for {r['batching']['auto_chose_mixed_for']} of "
                f"{r['batching']['clients']} clients."] if "batching" in r else []),
            "", f"**Memory**: {mem['workers']} worker process(es), peak RSS "
            f"{', '.join(f'{m:.0f}' for m in mem['worker_peaks_mb'])} MB; one fresh process serving one "
            f"client (setup, training, routed evaluation) {mem['one_process_mb']:.0f} MB (the largest over the clients, each "
            f"served alone: {', '.join(f'{m:.0f}' for m in mem.get('one_process_per_client_mb', [mem['one_process_mb']]))} MB). "
            f"{mem['counted']}"]
    if r.get("scaling"):
        out += ["", "**Scaling** (one round: training + a 4-sample evaluation; records per client fixed):", "",
                _table(["clients", "records/task", "workers", "round wall s", "training stage wall s",
                        "train s per client", "server aggregation s", "server global clustering s",
                        "workers' peak RSS MB"],
                       [[s["clients"], s["dataset_sample"], s["workers"], s["round_wall_s"], s["train_wall_s"],
                         s["train_per_client_s"], s["aggregate_s"], s["global_cluster_s"],
                         f"{s['worker_peak_rss_mb']:.0f}"] for s in r["scaling"]])]
    sv = r["server"]
    out += ["", f"**Server at scale** ({sv['clients']} clients x {sv['centroids_per_client']} centroids x "
            f"{sv['dim']} dims, adapters of {sv['adapter_params']:,} parameters ({r['server_adapter']})): global "
            f"clustering {sv['global_clustering_s']:.2f} s (k-means {sv['of_which_kmeans_and_silhouette_s']:.2f} s, "
            f"mapping {sv['of_which_mapping_s']:.3f} s; one bare k-means K=4 of the same points "
            f"{sv['bare_kmeans_s']:.2f} s), aggregation of {sv['clients']} adapters {sv['aggregation_s']:.2f} s, of "
            f"which {sv['of_which_deserialization_s']:.2f} s is Flower deserializing them (`Array.numpy`). With "
            "`diagnostics=true` the server also computes the silhouette curve over k_range (7 more k-means fits)."]
    return "\n".join(out) + "\n"


def machine() -> str:
    """The machine a bench report was measured on: CPUs, architecture, torch, GPU, and how loaded it was."""
    import os
    import platform

    import torch

    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}, {gpu}, "
            f"load average {os.getloadavg()[0]:.1f} at the end")


def write_report(out, name: str, report: dict[str, Any], render) -> None:
    """Stamp a one-measurement bench report (`--reference`, `--deployment`) with the date and machine,
    write <name>.json and <name>.md (render(report) -> markdown) into `out`, and print the markdown."""
    import datetime
    from pathlib import Path

    from fedrouter.utils.io import atomic_write_json, atomic_write_text

    report["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    report["machine"] = machine()
    text = render(report)
    out = Path(out)
    atomic_write_json(out / f"{name}.json", report)
    atomic_write_text(out / f"{name}.md", text)
    print(text)
    print(f"(written to {out / f'{name}.json'} and {out / f'{name}.md'})")
