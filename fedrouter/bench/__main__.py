"""`python -m fedrouter.bench [--quick] [--out DIR]`: one benchmark run on the embedded default.

1. a FedRouter simulation (8 clients by default; Flower + Ray, real apps; global router, all-task test sets,
   2 rounds, evaluation at round 2): per-phase times, the overhead ratio, workers' peak memory;
2. in this process, on that run's adapters and centroids: routed evaluation ours vs the reference
   way, and our generation vs a plain batched `model.generate`;
3. one process serving one client (memory baseline), scaling in clients, and the server at 1,000
   synthetic clients. Prints markdown and writes bench.json + bench.md into --out."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import tempfile
import time
from pathlib import Path

from fedrouter.config import RunConfig
from fedrouter.utils.io import atomic_write_json, atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scaling at 4 and 8 clients only, server at 200 clients")
    parser.add_argument("--out", default="output/bench", help="folder for bench.json and bench.md")
    parser.add_argument("--scaling", default="", help="comma-separated client counts (default 4,8,16,32,64)")
    parser.add_argument("--server-clients", type=int, default=0, help="synthetic clients at the server (default 1000)")
    parser.add_argument("--server-adapter", choices=("builtin", "llama-3.2-1b"), default="builtin",
                        help="adapter shape at the server: the run model's LoRA (builtin), or Llama-3.2-1B q/v r=8")
    parser.add_argument("--reference", metavar="PRESET",
                        help="only one run with this preset (e.g. configs/bench-reference.toml): wall time, peak "
                        "memory of the driver and of every worker, base-model loads, bytes per adapter message, "
                        "phases and the decoding roofline, beside the reference code's figures")
    parser.add_argument("--deployment", action="store_true",
                        help="only the same FedRouter run on the simulation and on the Deployment Engine on loopback "
                        "(SuperLink + one SuperNode per client): round wall times side by side and their ratio")
    parser.add_argument("--config", metavar="PRESET",
                        help="with --deployment: a TOML preset for the compared run (e.g. configs/real-smollm2.toml); "
                        "key=value overrides win over it")
    parser.add_argument("--population", default="", help="many clients: comma-separated client counts (e.g. 200,1000); "
                        "a few rounds of a whole run at each, its time and memory (population.md)")
    parser.add_argument("--sampled", default="", help="with --population: clients sampled per round, one per count")
    parser.add_argument("--methods", default="", help="with --population: comma-separated methods (default: the proposed one)")
    parser.add_argument("overrides", nargs="*", help="key=value settings for the runs (e.g. client_resources_cpus=2)")
    args = parser.parse_args(argv)
    logging.getLogger("fedrouter").setLevel(logging.WARNING)
    if args.reference:
        from fedrouter.bench.reference import main as reference_main

        return reference_main(args.reference, args.overrides, Path(args.out),
                              " " + " ".join(argv if argv is not None else sys.argv[1:]))
    if args.deployment:
        from fedrouter.bench.deployment import main as deployment_main

        return deployment_main(args.overrides, Path(args.out), " " + " ".join(argv if argv is not None else sys.argv[1:]),
                               preset=args.config)
    if args.population:
        from fedrouter.bench.population import main as population_main

        ints = [int(x) for x in args.population.split(",") if x]
        return population_main(ints, [int(x) for x in args.sampled.split(",") if x] or [max(1, n // 10) for n in ints],
                               [m for m in args.methods.split(",") if m], args.overrides, Path(args.out),
                               " " + " ".join(argv if argv is not None else sys.argv[1:]))
    if args.config:
        parser.error("--config applies to --deployment only (--reference takes its preset as its value)")
    scaling = [int(x) for x in (args.scaling or ("4,8" if args.quick else "4,8,16,32,64")).split(",") if x]
    server_clients = args.server_clients or (200 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="fedrouter-bench-") as tmp:
        report = run(tmp, scaling, server_clients, args.server_adapter, args.overrides,
                     " " + " ".join(argv if argv is not None else sys.argv[1:]))
    from fedrouter.bench.report import markdown

    text = markdown(report)
    out = Path(args.out)
    atomic_write_json(out / "bench.json", report)
    atomic_write_text(out / "bench.md", text)
    print(text)
    print(f"(written to {out / 'bench.json'} and {out / 'bench.md'})")
    return 0


def run(tmp: str, scaling: list[int], server_clients: int, server_adapter: str, overrides: list[str],
        argv: str) -> dict:
    import torch

    from fedrouter.bench import inference, memory, runs, server
    from fedrouter.bench.report import machine, verdicts
    from fedrouter.models.backbone import get_backbone
    from fedrouter.runtime.simulate import parse_overrides

    start = time.perf_counter()
    # The registry's proposed method (FedRouter) with its global router, tested on every task.
    cfg = RunConfig.from_mapping({"router": "global", "test_distribution": "all", "num_rounds": 2,
                                  "eval_round": "2", "output_dir": tmp, "sim_alias": "main",
                                  **parse_overrides(overrides)})
    main_run = runs.federated_run(cfg)
    loads = runs.workers(main_run.rows)
    # In-process measurements run with a worker's thread count.
    torch.set_num_threads(cfg.client_resources_cpus)
    get_backbone(cfg)
    routed = inference.routed_eval_speedup(cfg, cfg.run_dir)
    generation = inference.generation_efficiency(cfg, cfg.run_dir)
    batching = inference.mixed_vs_grouped(cfg, cfg.run_dir)
    # The baseline serves each client alone in a fresh process; the largest is the fair denominator
    # (a client's training peak depends on its data: long dialogues need more activation memory).
    ones = [memory.one_process_peak(cfg.to_dict(), str(cfg.run_dir), client_id=c) for c in range(cfg.num_clients)]
    one = max(ones)
    peaks = [main_run.worker_peaks[p] for p in sorted(main_run.worker_peaks)]
    scale = [runs.scaling_point(cfg, n) for n in scaling]
    if server_adapter == "llama-3.2-1b":
        shapes, adapter_shape = server.llama_qv_lora_shapes(), "Llama-3.2-1B q/v r=8"
    else:
        shapes = {k: v.shape for k, v in get_backbone(cfg).zero_like().items()}
        adapter_shape = f"the LoRA of {cfg.model_name_or_path}"
    srv = server.server_scale(shapes, num_clients=server_clients)
    ov = runs.overhead(main_run.rows)
    mem_ratio = sum(peaks) / (len(peaks) * one)
    values = {"overhead": ov["ratio"], "routed_eval_speedup": routed["speedup"],
              "generation_efficiency": generation["efficiency"], "memory": mem_ratio}
    if server_clients >= 1000:
        values["server_s"] = srv["clustering_and_aggregation_s"]
    return {
        "argv": argv.rstrip(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "run": (f"{cfg.fed_alg}, {cfg.model_name_or_path}, {cfg.num_clients} clients ({cfg.split_strategy} split), "
                f"{cfg.max_steps} steps x {cfg.batch_size} per round, router {cfg.alg.router}, test "
                f"distribution {cfg.test_distribution} ({cfg.max_eval_size} samples/client, "
                f"max_new_tokens {cfg.max_new_tokens}), {cfg.num_rounds} rounds, evaluation at round "
                f"{cfg.num_rounds}; client_resources_cpus={cfg.client_resources_cpus} -> {len(loads)} worker "
                f"process(es), base-model loads per worker: {sorted(loads.values())}."),
        "clients": cfg.num_clients,
        "ratios": verdicts(values, cfg.num_clients),
        "phases": runs.phase_totals(main_run.rows),
        "overhead": ov,
        "routed_eval": routed,
        "generation": generation,
        "batching": batching,
        "memory": {"workers": len(peaks), "worker_peaks_mb": [p / 2**20 for p in peaks],
                   "one_process_mb": one / 2**20, "one_process_per_client_mb": [o / 2**20 for o in ones],
                   "ratio": mem_ratio,
                   "counted": "Counted: the peak RSS (VmHWM) of each Ray worker process running the ClientApp; "
                              "not counted: the server/driver, Ray's daemons and its shared-memory object store."},
        "scaling": scale,
        "server": srv,
        "server_adapter": adapter_shape,
        "run_wall_s": main_run.wall_s,
        "bench_wall_s": time.perf_counter() - start,
    }


if __name__ == "__main__":
    sys.exit(main())
