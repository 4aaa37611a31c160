"""`python -m fedrouter.bench --deployment [key=value ...]`: the same FedRouter run on the Simulation
Engine and on the Deployment Engine on loopback (a SuperLink, one SuperNode per client, each with its
long-running ClientApp process; training_scripts/run_deployment_local.sh), side by side: round wall
times from each run's metrics.jsonl and how much of each is messaging (the stage's wall minus the
slowest client's own message time), client phases, base-model loads per process, whole-run wall. The ratio is
deployment round wall / simulation round wall over the federated rounds (the setup step, which loads
the model and embeds and clusters the data in both, is reported beside it)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fedrouter.config import RunConfig, flat_defaults
from fedrouter.metrics import MetricSelection, display_name

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "training_scripts" / "run_deployment_local.sh"


def free_ports(n: int) -> int:
    """First of `n` consecutive free TCP ports on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65000 and all(_port_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no block of {n} free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_config_arg(settings: dict) -> str:
    """flwr's --run-config string (TOML values) for these settings."""
    def toml(v):
        if isinstance(v, bool):
            return str(v).lower()
        return repr(str(v)) if isinstance(v, str) else str(v)

    return " ".join(f"{k}={toml(v)}" for k, v in settings.items())


def flower_env(**extra: str) -> dict[str, str]:
    """This checkout on PYTHONPATH (for every Flower process), offline, no telemetry."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def deployment_run(cfg: RunConfig, work: Path, timeout_s: float = 3600) -> float:
    """Run `cfg` on the Deployment Engine on loopback, one SuperNode per client; returns the wall time
    of the launcher (start-up of every process, the run, shutdown). Raises with the log's tail on failure."""
    defaults = flat_defaults()
    settings = {k: v for k, v in cfg.to_dict().items() if v != defaults[k]}
    settings["output_dir"] = str(Path(cfg.output_dir).resolve())
    for key in ("model_name_or_path", "dataset_name"):  # local paths: the same files from any process
        if key in settings and Path(str(settings[key])).exists():
            settings[key] = str(Path(str(settings[key])).resolve())
    env = flower_env(num_supernodes=str(cfg.num_clients), superlink_port=str(free_ports(1)),
                     supernode_port=str(free_ports(cfg.num_clients)), client_state_root=str(work / "supernodes"),
                     work_dir=str(work / "flower"))
    cmd = ["sh", str(LAUNCHER), run_config_arg(settings)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout_s)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"deployment run failed ({shlex.join(cmd)}):\n{proc.stdout[-4000:]}")
    return wall


def stage_walls(rows: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    if rows and "setup" in rows[0]["timing"]:
        out["setup"] = rows[0]["timing"]["setup"]["wall_s"]
    out.update({f"round {r['round']}": r["time_s"] for r in rows})
    return out


def waiting(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per stage: its wall time minus the slowest client's own message time (what the ClientApp
    measured from receiving the message to replying), summed over the stage's message kinds: the time
    spent getting messages to and from the clients rather than computing."""
    def gap(wall: float, clients: dict) -> float:
        return wall - max((m["time_s"] for m in clients.values()), default=0.0)

    out = {}
    for r in rows:
        t = r["timing"]
        if "setup" in t:
            out["setup"] = gap(t["setup"]["wall_s"], t["setup"]["clients"])
        out[f"round {r['round']}"] = gap(t["train_wall_s"], t["train"]) + (
            gap(t["evaluate_wall_s"], t["evaluate"]) if "evaluate" in t else 0.0)
    return out


def compare(cfg: RunConfig, tmp: Path) -> dict[str, Any]:
    from fedrouter.bench import runs
    from fedrouter.results.run_folder import RunFolder

    sim = runs.federated_run(cfg.replace(output_dir=str(tmp / "simulation")))
    dep_cfg = cfg.replace(output_dir=str(tmp / "deployment"))
    dep_wall = deployment_run(dep_cfg, tmp / "deployment-work")
    dep_rows = RunFolder(dep_cfg.run_dir).read_metrics()
    walls = {"simulation": stage_walls(sim.rows), "deployment": stage_walls(dep_rows)}
    waits = {"simulation": waiting(sim.rows), "deployment": waiting(dep_rows)}
    rounds = [k for k in walls["simulation"] if k != "setup"]
    sim_rounds, dep_rounds = (sum(walls[e][k] for k in rounds) for e in ("simulation", "deployment"))
    headline = MetricSelection.of(cfg).headline
    final = {e: next(r["eval"][headline] for r in reversed(rows) if "eval" in r)
             for e, rows in (("simulation", sim.rows), ("deployment", dep_rows))}
    return {
        "config": cfg.to_dict(),
        "stages": walls,
        "waiting": waits,
        "rounds_wall_s": {"simulation": sim_rounds, "deployment": dep_rounds},
        "ratio": dep_rounds / sim_rounds,
        "run_wall_s": {"simulation": sim.wall_s, "deployment": dep_wall},
        "loads": {"simulation": sorted(runs.workers(sim.rows).values()),
                  "deployment": sorted(runs.workers(dep_rows).values())},
        "final_metric": headline,
        "final_score": final,
        # client phases summed over messages: where a difference in compute (not in messaging) shows
        "phases": {"simulation": runs.phase_totals(sim.rows), "deployment": runs.phase_totals(dep_rows)},
    }


def markdown(r: dict[str, Any], argv: str) -> str:
    c = r["config"]
    s, d = r["stages"]["simulation"], r["stages"]["deployment"]
    (verdict,) = r["ratios"]
    ok = "pass" if verdict["pass"] else "FAIL"
    out = [f"### `python -m fedrouter.bench{argv}` — {r['date']}", "", f"Machine: {r['machine']}.", "",
           f"Run: {c['fed_alg']}, {c['model_name_or_path']}{' 4-bit' if c['load_in_4bit'] else ''}, "
           f"{c['num_clients']} clients ({c['num_clients']} SuperNodes in the deployment), {c['num_rounds']} rounds of "
           f"{c['max_steps']} steps x {c['batch_size']}, evaluation at round(s) {c['eval_round']} "
           f"({c['max_eval_size']} samples/client, {c['max_new_tokens']} new tokens).", "",
           "| stage | simulation (s) | deployment (s) | ratio | of which messaging: simulation / deployment (s) |",
           "| --- | --- | --- | --- | --- |"]
    ws, wd = r["waiting"]["simulation"], r["waiting"]["deployment"]
    out += [f"| {k} | {s[k]:.1f} | {d.get(k, float('nan')):.1f} | {d.get(k, float('nan')) / s[k]:.2f} | "
            f"{ws.get(k, 0.0):.1f} / {wd.get(k, 0.0):.1f} |"
            for k in sorted(s, key=lambda k: -1 if k == "setup" else int(k.split()[-1]))]  # json sorts keys
    rw = r["rounds_wall_s"]
    out += [f"| **rounds** | {rw['simulation']:.1f} | {rw['deployment']:.1f} | **{r['ratio']:.2f}** ({ok}: {verdict['target']}) | |",
            "", f"Base-model loads per process: simulation {r['loads']['simulation']} (Ray workers), deployment "
            f"{r['loads']['deployment']} (one ClientApp process per SuperNode). Whole run including start-up and "
            f"shutdown: simulation {r['run_wall_s']['simulation']:.0f} s, deployment {r['run_wall_s']['deployment']:.0f} s. "
            f"Final {display_name(r['final_metric'])}: simulation {r['final_score']['simulation']:.4f}, deployment "
            f"{r['final_score']['deployment']:.4f}.", "",
            "| phase (worker-seconds, all messages) | simulation | deployment |", "| --- | --- | --- |"]
    ps, pd = r["phases"]["simulation"], r["phases"]["deployment"]
    out += [f"| {k} | {ps[k]:.1f} | {pd.get(k, 0.0):.1f} |" for k in ps if ps[k] or pd.get(k)]
    return "\n".join(out) + "\n"


def bench_config(preset: str | None, overrides: list[str]) -> RunConfig:
    """The compared run: FedRouter with a global router, 2 rounds, evaluation at round 2, unless the
    preset (a TOML file, as `--config` of the simulation) or the key=value overrides say otherwise
    (overrides win over the preset)."""
    from fedrouter.runtime.simulate import build_config

    return build_config(preset, overrides, defaults={"router": "global", "test_distribution": "all", "num_rounds": 2,
                                                     "eval_round": "2", "sim_alias": "deployment_bench"})


def main(overrides: list[str], out: Path, argv: str, preset: str | None = None) -> int:
    from fedrouter.bench.report import verdicts, write_report

    cfg = bench_config(preset, overrides)
    with tempfile.TemporaryDirectory(prefix="fedrouter-bench-deployment-") as tmp:
        report = compare(cfg, Path(tmp))
    report["ratios"] = verdicts({"deployment": report["ratio"]}, cfg.num_clients)
    write_report(out, "bench_deployment", report, lambda r: markdown(r, argv))
    return 0
