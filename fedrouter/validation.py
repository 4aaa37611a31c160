"""Checks every setting before any model or data loads; one message per problem, naming the setting."""

from __future__ import annotations

from pathlib import Path

from fedrouter.config import ConfigError, RunConfig, cross_checks
from fedrouter.metrics import selection_problems


def problems(cfg: RunConfig, sources: bool = True) -> list[str]:
    """Every problem found (empty list = valid): each section's own check, the checks across sections,
    the algorithm's own check. `sources=False` checks the settings alone; with `sources=True` the data
    and model they name are checked on this machine too (see `source_problems`), which is right
    wherever the data lives: the launcher, and each client."""
    out: list[str] = []
    for section in cfg.section_list():  # the common sections, then the algorithm's own
        out += section.check(cfg)
    out += cross_checks(cfg)
    out += selection_problems(cfg.metrics, cfg.task_metrics)  # the metric registry lives above the settings
    if sources:
        out += source_problems(cfg, partition=not out)
    return out


def source_problems(cfg: RunConfig, partition: bool = True) -> list[str]:
    """Can this machine load the data and the model the settings name? With `partition`, the data is
    loaded and split into the clients' shards too (cached per process, so that work is not lost):
    missing columns, a task too small for the split, or n_clusters above every client's data size
    are reported here instead of failing inside a client mid-run."""
    from fedrouter.data.sources import source_for
    from fedrouter.models.loader import bitsandbytes_problem, model_available_offline
    from fedrouter.models.tiny import is_builtin

    out = source_for(cfg.dataset_name).problems(cfg)  # the data source's own checks (fedrouter/data/sources/)
    if not is_builtin(cfg.model_name_or_path):
        problem = model_available_offline(cfg.model_name_or_path)
        if problem:
            out.append(problem)
        elif cfg.gguf_file and Path(cfg.model_name_or_path).is_dir() and not (Path(cfg.model_name_or_path) / cfg.gguf_file).exists():
            out.append(f"gguf_file={cfg.gguf_file!r} not found in {cfg.model_name_or_path}")
    elif cfg.model_name_or_path != "builtin:tiny":
        out.append(f"model_name_or_path={cfg.model_name_or_path!r}: the built-in models are: builtin:tiny")
    if cfg.load_in_4bit or cfg.load_in_8bit:
        problem = bitsandbytes_problem()
        if problem:
            out.append(f"load_in_4bit/load_in_8bit asked for, but {problem}")
    if partition and not out:
        out += _data_problems(cfg)
    return out


def _data_problems(cfg: RunConfig) -> list[str]:
    from fedrouter.data.federated import all_client_data

    try:
        clients = all_client_data(cfg)
    except ValueError as exc:  # DatasetError included: unreadable data, missing columns, bad split values
        return [f"dataset_name={cfg.dataset_name!r} with split_strategy={cfg.split_strategy!r}, "
                f"num_clients={cfg.num_clients}: {exc}"]
    out = []
    empty = [c.client_id for c in clients if not c.train]
    if empty:
        out.append(f"clients {empty} get no training data from dataset_name={cfg.dataset_name!r} "
                   f"(dataset_sample={cfg.dataset_sample}, num_clients={cfg.num_clients}); use fewer clients or more data")
    return out + cfg.alg.check_data(cfg, [len(c.train) for c in clients])


def validate(cfg: RunConfig, sources: bool = True) -> None:
    found = problems(cfg, sources)
    if found:
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(found))
