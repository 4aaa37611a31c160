"""Flower ServerApp: the resumable round loop around the chosen algorithm's server half."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np
from flwr.app import Context, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedrouter.algorithms.base import ServerAlgorithm, get_algorithm, metrics_of
from fedrouter.config import RunConfig
from fedrouter.metrics import MetricSelection, scores_text
from fedrouter.models.backbone import LoraSpec
from fedrouter.privacy.server import BudgetExhausted, split_arrays
from fedrouter.results.run_folder import RunFolder
from fedrouter.runtime.federation import Federation
from fedrouter.utils.io import atomic_write_json
from fedrouter.utils.logs import add_file_log, remove_file_log, setup_process_logging
from fedrouter.utils.seeding import derive_seed
from fedrouter.validation import validate

log = logging.getLogger("fedrouter.server")

app = ServerApp()

CONFIG_ENV = "FEDROUTER_RUN_CONFIG"  # path of a resolved-config JSON (set by fedrouter.runtime.simulate)


class RunFailed(RuntimeError):
    """Too many clients failed in one round to trust the aggregate."""


def config_from_context(context: Context) -> RunConfig:
    """`flwr run` passes the run config; the in-process launcher passes a JSON file instead."""
    values: dict[str, Any] = dict(context.run_config)
    path = os.environ.get(CONFIG_ENV)
    if path:
        values = {**values, **json.loads(open(path).read())}
    return RunConfig.from_mapping(values)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = config_from_context(context)
    # Settings only: the data and the model live with the clients, which check them at discovery.
    validate(cfg, sources=False)
    run_federation(cfg, grid)


def sample_clients(cfg: RunConfig, rnd: int) -> list[int]:
    """Clients of round `rnd`: a pure function of (seed, round), so a resumed run samples the same.
    sample_clients of them without replacement; with dp on and dp_sampling=poisson, each client independently
    with probability sample_clients / num_clients (the sampling the accountant then assumes)."""
    rng = np.random.default_rng(derive_seed(cfg.seed, 0x5A3, rnd))
    if cfg.privacy.on and cfg.dp_sampling == "poisson":
        return [int(c) for c in np.flatnonzero(rng.random(cfg.num_clients) < cfg.sample_clients / cfg.num_clients)]
    return sorted(int(c) for c in rng.choice(cfg.num_clients, size=cfg.sample_clients, replace=False))


def run_federation(cfg: RunConfig, grid: Grid) -> dict[str, Any]:
    setup_process_logging()
    folder = RunFolder(cfg.run_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    handler = add_file_log(folder.path / "log.txt")
    try:
        return _run(cfg, grid, folder)
    except Exception as exc:
        log.error("run stopped: %s", exc)  # the run folder's log says why, not only the console
        raise
    finally:
        remove_file_log(handler)


def _run(cfg: RunConfig, grid: Grid, folder: RunFolder) -> dict[str, Any]:
    algo: ServerAlgorithm = get_algorithm(cfg.fed_alg).server(cfg)
    # Built before round 1: importing peft costs seconds, which would otherwise land in the first
    # evaluation round, and bad LoRA settings fail here instead of after training.
    peft_config = LoraSpec.from_config(cfg).peft_config()
    start = _restore(cfg, folder, algo)
    folder.write_config(cfg.to_dict())
    folder.write_provenance(start)  # one record per start: a resumed run keeps the first session's
    # Rows of checkpointed rounds survive a resume; a run that never finished round 1 starts over.
    rows = [r for r in folder.read_metrics() if r["round"] < start] if start > 1 else []
    fed = Federation(grid, cfg.to_dict(), cfg.num_clients)
    log.info("run %s: fed_alg=%s, %d clients (%d per round), rounds %d..%d, eval at %s",
             folder.path, cfg.fed_alg, cfg.num_clients, cfg.sample_clients, start, cfg.num_rounds, list(cfg.eval_rounds))
    if cfg.unseen_tasks:  # the clients resolve the names against their data; the server only reports them
        log.info("unseen tasks (no client trains on them; scored under test_distribution=all): %s", cfg.unseen_tasks)
    everyone = list(range(cfg.num_clients))
    setup = algo.configure_setup(everyone) if start == 1 else None
    timing: dict[str, Any] = {}  # seconds: server phases, and each client's message time and phases
    if setup is not None:
        t0 = time.perf_counter()
        good, failed = fed.send("setup", 0, setup)
        _check_failures(cfg, "setup", 0, failed, len(setup))
        t1 = time.perf_counter()
        algo.aggregate_setup(good)
        timing["setup"] = {"wall_s": time.perf_counter() - t0, "global_cluster_s": time.perf_counter() - t1,
                           "clients": client_times(good)}
    if start == 1 and 0 in cfg.eval_rounds:  # round 0: the base model before any training (zero-shot)
        t0 = time.perf_counter()
        row = {"round": 0, **_evaluate(cfg, fed, algo, 0, everyone, timing)}
        row["time_s"] = time.perf_counter() - t0
        row["comm"] = fed.take_traffic()  # with the setup's, when there was one
        row["timing"], timing = timing, {}
        if algo.privacy.on:
            row["privacy"] = algo.privacy.spent()  # the setup's release (FedRouter's centroids), if any
        rows.append(row)
        folder.write_metrics(rows)
        _log_round({"train_loss": None, "lr": 0.0, "failures": {}, **row}, cfg)
    privacy = algo.privacy
    if privacy.on:
        log.info("differential privacy: dp=%s, clip %g, noise multiplier %.4g, delta %g, accounting %s sampling "
                 "(%s)%s", cfg.dp, cfg.dp_clip, privacy.sigma, privacy.accountant.config.target_delta,
                 privacy.accountant.config.sampling_method.value, privacy.accountant.config.neighboring_relation.value,
                 f", budget epsilon {cfg.dp_target_epsilon} ({cfg.dp_budget})" if cfg.dp_target_epsilon else "")
    stopped = None
    for rnd in range(start, cfg.num_rounds + 1):
        try:
            privacy.check_budget(rnd)
        except BudgetExhausted as exc:
            stopped = str(exc)
            log.warning("privacy budget: %s; training stops after round %d", exc, rnd - 1)
            break
        t0 = time.perf_counter()
        sampled = sample_clients(cfg, rnd)
        messages = algo.configure_train(rnd, sampled)
        good, failed = fed.send("train", rnd, messages)
        _check_failures(cfg, "training", rnd, failed, len(sampled))
        t1 = time.perf_counter()
        good = privacy.screen(rnd, messages, good)
        train_metrics = algo.aggregate_train(rnd, good) if good else {}
        if algo.SENDS_UPDATES:
            privacy.account_round()
        timing.update({"train_wall_s": t1 - t0, "aggregate_s": time.perf_counter() - t1, "train": client_times(good)})
        losses = [float(c["metrics"]["loss"]) for c in good.values() if "loss" in c["metrics"]]
        row: dict[str, Any] = {
            "round": rnd,
            "lr": cfg.lr_at(rnd),
            "clients": sampled,
            "train_loss": float(np.mean(losses)) if losses else None,
            "train": train_metrics,
            "failures": {str(c): r for c, r in failed.items()},
        }
        if privacy.on:
            row["privacy"] = privacy.spent()
        if rnd in cfg.eval_rounds:
            row.update(_evaluate(cfg, fed, algo, rnd, everyone, timing))
            _save_adapters(cfg, folder, rnd, algo, peft_config)
        row["time_s"] = time.perf_counter() - t0
        row["comm"] = fed.take_traffic()
        row["timing"], timing = timing, {}
        rows.append(row)
        folder.write_metrics(rows)
        diagnostics = algo.diagnostics()
        if diagnostics:
            atomic_write_json(folder.path / "diagnostics.json", diagnostics)
        arrays, meta = algo.state_dict()
        dp_arrays, dp_meta = privacy.state_dict()
        folder.save_checkpoint(rnd, {**arrays, **dp_arrays}, {"round": rnd, "algorithm": meta, "privacy": dp_meta})
        _log_round(row, cfg)
    last = rows[-1]["round"] if rows else 0
    if stopped and last >= 1 and "eval" not in rows[-1]:  # the budget ended training: score what it reached
        rows[-1].update(_evaluate(cfg, fed, algo, last, everyone, {}))
        _save_adapters(cfg, folder, last, algo, peft_config)
        folder.write_metrics(rows)
    final = next(r["eval"] for r in reversed(rows) if "eval" in r)
    results = {"final_round": last if stopped else cfg.num_rounds, "final": final, "fed_alg": cfg.fed_alg,
               "seed": cfg.seed, "total_time_s": float(sum(r["time_s"] for r in rows)),
               "communication": run_traffic(rows)}
    if privacy.on:
        results["privacy"] = {**privacy.spent(), "stopped": stopped}
    folder.write_results(results)
    log.info("run finished: %s", scores_text(final, MetricSelection.of(cfg).names, "  "))
    return results


def _check_failures(cfg: RunConfig, step: str, rnd: int, failed: dict[int, str], asked: int) -> None:
    """Stop instead of aggregating (or scoring) on too few clients to trust."""
    if len(failed) > cfg.max_failure_rate * asked:
        raise RunFailed(f"round {rnd} {step}: {len(failed)} of {asked} clients failed (max_failure_rate="
                        f"{cfg.max_failure_rate}); reasons: {failed}")


def _evaluate(cfg: RunConfig, fed: Federation, algo: ServerAlgorithm, rnd: int, clients: list[int],
              timing: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    good, failed = fed.send("evaluate", rnd, algo.configure_evaluate(rnd, clients))
    timing.update({"evaluate_wall_s": time.perf_counter() - t0, "evaluate": client_times(good)})
    _check_failures(cfg, "evaluation", rnd, failed, len(clients))
    return {"eval": algo.aggregate_evaluate(rnd, good), "eval_failures": {str(c): r for c, r in failed.items()}}


def run_traffic(rows: list[dict[str, Any]]) -> dict[str, int] | None:
    """The run's tensor bytes down and up, summed over its metrics rows (None if a row predates the
    accounting, e.g. a run resumed from an older version)."""
    if any("comm" not in r for r in rows):
        return None
    down, up = sum(r["comm"]["down_bytes"] for r in rows), sum(r["comm"]["up_bytes"] for r in rows)
    return {"down_bytes": down, "up_bytes": up, "total_bytes": down + up}


def client_times(replies: dict[int, RecordDict]) -> dict[str, dict[str, float]]:
    """Per client: the process that served it, its base-model load count, its message's wall time
    and the seconds of each phase inside (`time/train`, `time/generate`, ...)."""
    out = {}
    for cid, content in sorted(replies.items()):
        m = metrics_of(content)
        out[str(cid)] = {k: v for k, v in m.items()
                         if k.startswith("time") or k in ("pid", "load_count", "decode_steps", "decode_row_steps")}
    return out


def _restore(cfg: RunConfig, folder: RunFolder, algo: ServerAlgorithm) -> int:
    """First round to run: 1, or the one after the last checkpoint when resuming."""
    last = folder.latest_round()
    if last == 0:
        return 1
    if not cfg.resume:
        log.warning("resume=false: discarding the previous run in %s", folder.path)
        folder.clear()
        return 1
    conflict = folder.resume_conflict(cfg.to_dict())
    if conflict:
        raise RuntimeError(conflict)
    arrays, meta = folder.load_checkpoint(last)
    arrays, dp_arrays = split_arrays(arrays)
    algo.load_state_dict(arrays, meta["algorithm"])
    algo.privacy.load_state_dict(dp_arrays, meta.get("privacy", {}))
    log.info("resuming from the checkpoint of round %d", last)
    return last + 1


def _save_adapters(cfg: RunConfig, folder: RunFolder, rnd: int, algo: ServerAlgorithm, peft_config) -> None:
    for name, state in algo.adapters().items():
        folder.save_adapter(rnd, name, state, peft_config, cfg.model_name_or_path)


def _log_round(row: dict[str, Any], cfg: RunConfig) -> None:
    loss = f"{row['train_loss']:.4f}" if row["train_loss"] is not None else "n/a"
    msg = f"round {row['round']}/{cfg.num_rounds}: train loss {loss}, lr {row['lr']:.2e}, {row['time_s']:.1f}s"
    if "comm" in row:
        msg += f", sent {row['comm']['down_bytes'] / 1e6:.2f} MB down / {row['comm']['up_bytes'] / 1e6:.2f} MB up"
    if row["failures"]:
        msg += f", failed clients {sorted(row['failures'])}"
    if row.get("privacy"):
        msg += f", epsilon {row['privacy']['epsilon']:.3f} (delta {row['privacy']['delta']:.2g})"
    if "eval" in row and row["eval"]:
        ev, selection = row["eval"], MetricSelection.of(cfg)
        msg += f" | eval {scores_text(ev, selection.names)}"
        per_task = {k.split("/")[1]: v for k, v in ev.items() if k.startswith(f"{selection.headline}/")}
        if per_task:
            msg += " (" + ", ".join(f"{t} {v:.3f}" for t, v in per_task.items()) + ")"
    log.info(msg)
