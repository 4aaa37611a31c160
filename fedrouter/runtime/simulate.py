"""Run one federated simulation in-process: `python -m fedrouter.runtime.simulate [--config PRESET.toml] key=value ...`.

The same ServerApp and ClientApp as `flwr run .`, on Flower's Simulation Engine (Ray backend),
without a detached SuperLink; exit code 0 only when the run completed."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from fedrouter.config import ConfigError, RunConfig, help_table
from fedrouter.utils.io import atomic_write_json
from fedrouter.utils.logs import setup_process_logging, silence_known_noise

log = logging.getLogger("fedrouter.runtime.simulate")


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_preset(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--config {path}: no such file")
    if p.suffix == ".json":  # a run folder's config.json: that run's resolved settings
        return json.loads(p.read_text())
    data = tomllib.loads(p.read_text())
    # Accept a flat file or one with the pyproject-style [tool.flwr.app.config] table.
    return data.get("tool", {}).get("flwr", {}).get("app", {}).get("config", data)


def build_config(preset: str | None, overrides: list[str], defaults: dict[str, Any] | None = None) -> RunConfig:
    """`defaults` (a caller's own, e.g. the bench's) < the preset < the key=value overrides. A preset's table
    named after a method (`[fedrouter]`) holds that method's own settings: passed on as `fedrouter.<setting>`,
    the way `flwr run` flattens it, which RunConfig applies when that method is the run's fed_alg (above the
    preset's flat keys); a setting given as an override still wins."""
    preset_values = load_preset(preset)
    given = parse_overrides(overrides)
    tables = {f"{method}.{key}": value for method, table in preset_values.items() if isinstance(table, dict)
              for key, value in table.items() if key not in given}
    flat = {k: v for k, v in preset_values.items() if not isinstance(v, dict)}
    values = {**(defaults or {}), **flat, **tables, **given}
    cfg = RunConfig.from_mapping(values)
    # Ray workers may run in another directory: make the run folder absolute.
    return cfg.replace(output_dir=str(Path(cfg.output_dir).expanduser().resolve()))


def backend_config(cfg: RunConfig) -> dict[str, Any]:
    """Flower's Ray backend settings. Its init_args go to ray.init: a private local Ray sized to this
    machine, or, with ray_address, an existing cluster whose own CPUs and GPUs decide how many
    clients run at once (ray.init refuses num_cpus/num_gpus together with an address)."""
    init_args: dict[str, Any] = {"include_dashboard": False, "logging_level": "warning", "log_to_driver": True}
    if cfg.ray_address:
        # The GPUs are on the cluster's machines, not necessarily on this one.
        gpus_per_client = cfg.client_resources_gpus if cfg.gpu else 0.0
        init_args["address"] = cfg.ray_address
    else:
        import torch

        gpus = torch.cuda.device_count() if cfg.gpu else 0
        gpus_per_client = cfg.client_resources_gpus if gpus else 0.0
        init_args.update(num_cpus=max(os.cpu_count() or 1, cfg.client_resources_cpus), num_gpus=gpus)
    return {"client_resources": {"num_cpus": cfg.client_resources_cpus, "num_gpus": gpus_per_client},
            "init_args": init_args}


def write_data_record(cfg: RunConfig, path: Path) -> None:
    """The run's data as the split made it, beside its config: the data's tasks, each client's
    records per task (train and test), and what the data's source records of where it came from (for the
    hub benchmark the source and revision of each task). Skipped with a warning when the data cannot be
    loaded here (the clients then say why)."""
    from fedrouter.data.federated import client_task_counts
    from fedrouter.data.sources import SourceOptions, load_pool, source_for
    from fedrouter.data.splits import pool_tasks

    try:
        pool = load_pool(cfg.dataset_name, cfg.dataset_sample, cfg.seed, SourceOptions.from_config(cfg))
        record: dict[str, Any] = {"dataset_name": cfg.dataset_name, "tasks": list(pool_tasks(pool)),
                                  "clients": client_task_counts(cfg)}
    except ValueError as exc:
        log.warning("data not loadable on this machine (%s); %s not written", exc, path.name)
        return
    record.update(source_for(cfg.dataset_name).provenance())
    atomic_write_json(path, record)


def simulate(cfg: RunConfig) -> dict[str, Any]:
    """Check the run folder and the settings, then run the federation; returns the run's results.json
    content. A completed run with the same settings is returned as it is, and a folder holding a run
    with other settings is refused (ConfigError), both before anything loads or is written."""
    from fedrouter.results.run_folder import RunFolder, config_differences

    folder = RunFolder(cfg.run_dir)
    done = folder.read_results()
    if cfg.resume and done and not config_differences(folder.read_config() or {}, cfg.to_dict()):
        log.info("%s is already complete; skipping (resume=false to rerun)", folder.path)
        return done
    conflict = folder.resume_conflict(cfg.to_dict()) if cfg.resume else None
    if conflict:
        raise ConfigError(conflict)
    from fedrouter.validation import validate

    validate(cfg)
    from flwr.simulation import run_simulation

    from fedrouter.models.loader import resolve_model_path
    from fedrouter.runtime.client_app import app as client_app
    from fedrouter.runtime.server_app import CONFIG_ENV
    from fedrouter.runtime.server_app import app as server_app

    silence_known_noise()  # again now that Flower's import has put its DeprecationWarning filter in front
    # Build the built-in model once here, before clients start and race for it.
    resolve_model_path(cfg.model_name_or_path)
    write_data_record(cfg, folder.path / "data.json")
    launch = folder.path / ".launch_config.json"
    atomic_write_json(launch, cfg.to_dict())
    os.environ[CONFIG_ENV] = str(launch)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        # Deprecated in Flower 1.42 but the only in-process engine; `flwr run` cannot replace it yet
        # (docs/deployment.md, "Why the launcher runs Flower in-process").
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=cfg.num_clients,
                       backend_config=backend_config(cfg))
    finally:
        os.environ.pop(CONFIG_ENV, None)
    results = folder.read_results()
    stopped = (results or {}).get("privacy", {}).get("stopped")  # dp_budget=stop ended training: complete
    if results is None or (results.get("final_round") != cfg.num_rounds and not stopped):
        raise RuntimeError(f"the simulation ended without completing {cfg.num_rounds} rounds; see {folder.path / 'log.txt'}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="TOML preset (flat keys, or a [tool.flwr.app.config] table), or a run "
                        "folder's config.json (that run's resolved settings: reruns it)")
    parser.add_argument("--list-settings", action="store_true", help="print every setting and exit")
    parser.add_argument("--print", metavar="KEY", help="print one resolved setting (e.g. sim_alias) and exit")
    parser.add_argument("--print-tasks", action="store_true", help="print the data's tasks (space separated) and exit")
    parser.add_argument("overrides", nargs="*", help="key=value settings (override the preset)")
    args = parser.parse_args(argv)
    if args.list_settings:
        print(help_table())
        return 0
    try:
        cfg = build_config(args.config, args.overrides)
        if args.print_tasks:
            from fedrouter.data.sources import SourceOptions, load_pool
            from fedrouter.data.splits import pool_tasks

            pool = load_pool(cfg.dataset_name, cfg.dataset_sample, cfg.seed, SourceOptions.from_config(cfg))
            print(" ".join(pool_tasks(pool)))
            return 0
        if args.print:
            values = cfg.to_dict()
            if args.print not in values:
                raise ConfigError(f"--print {args.print}: not a setting of this run; known: {sorted(values)}")
            print(values[args.print])
            return 0
        setup_process_logging()
        results = simulate(cfg)
    except ConfigError as exc:
        print(f"fedrouter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fedrouter: interrupted; completed rounds are checkpointed, rerun the same command to resume",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Flower's ServerApp thread still waits for replies from the stopped clients and would keep
        # the interpreter alive; nothing is lost by leaving now (every file is written atomically).
        os._exit(130)
    print(json.dumps({"run_dir": str(cfg.run_dir), **results["final"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
