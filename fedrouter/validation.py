"""Checks every setting before any model or data loads; one message per problem, naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

from fedrouter.config import (
    DTYPES,
    EMBEDDINGS,
    EVALUATION_MODES,
    ROUTERS,
    TEST_DISTRIBUTIONS,
    ConfigError,
    RunConfig,
)
from fedrouter.data.builtin import TASKS
from fedrouter.data.splits import SPLIT_ALIASES
from fedrouter.data.splits import SPLIT_STRATEGIES as SPLITS

NUM_TASKS = len(TASKS)


def problems(cfg: RunConfig, sources: bool = True) -> list[str]:
    """Every problem found (empty list = valid). `sources=False` checks the settings alone; with
    `sources=True` the data and model they name are checked on this machine too (see
    `source_problems`), which is right wherever the data lives: the launcher, and each client."""
    from fedrouter.algorithms.base import known_algorithms

    out: list[str] = []

    def check(ok: bool, msg: str) -> None:
        if not ok:
            out.append(msg)

    algs = known_algorithms()
    check(cfg.fed_alg in algs, f"fed_alg={cfg.fed_alg!r} is not known; allowed: {', '.join(algs)}")
    split = SPLIT_ALIASES.get(cfg.split_strategy, cfg.split_strategy)
    check(split in SPLITS, f"split_strategy={cfg.split_strategy!r} is not known; allowed: "
          f"{', '.join(SPLITS + tuple(SPLIT_ALIASES))}")
    check(cfg.evaluation_mode in ("", *EVALUATION_MODES),
          f"evaluation_mode={cfg.evaluation_mode!r} is not known; allowed: {', '.join(EVALUATION_MODES)}")
    check(cfg.router in ("", *ROUTERS), f"router={cfg.router!r} is not known; allowed: {', '.join(ROUTERS)}")
    check(cfg.test_distribution in ("", *TEST_DISTRIBUTIONS),
          f"test_distribution={cfg.test_distribution!r} is not known; allowed: {', '.join(TEST_DISTRIBUTIONS)}")
    check(cfg.embedding in EMBEDDINGS, f"embedding={cfg.embedding!r} is not known; allowed: {', '.join(EMBEDDINGS)}")
    check(cfg.dtype in DTYPES, f"dtype={cfg.dtype!r} is not known; allowed: {', '.join(DTYPES)}")

    check(cfg.num_clients >= 1, f"num_clients={cfg.num_clients} must be >= 1")
    check(1 <= cfg.sample_clients <= cfg.num_clients,
          f"sample_clients={cfg.sample_clients} must be between 1 and num_clients={cfg.num_clients}")
    if split in ("single", "dual"):
        check(cfg.num_clients % NUM_TASKS == 0,
              f"num_clients={cfg.num_clients} must be a multiple of {NUM_TASKS} for split_strategy={split} "
              f"({NUM_TASKS} tasks, the same number of clients per task)")
    check(cfg.num_rounds >= 1, f"num_rounds={cfg.num_rounds} must be >= 1")
    try:
        rounds = [int(x) for x in cfg.eval_round.replace(" ", "").split(",") if x]
        bad = [r for r in rounds if not 0 <= r <= cfg.num_rounds]
        check(not bad, f"eval_round={cfg.eval_round!r} has rounds {bad} outside 0..num_rounds={cfg.num_rounds} "
              "(0 = the base model before training)")
    except ValueError:
        out.append(f"eval_round={cfg.eval_round!r} must be comma-separated round numbers, e.g. '3,10,25'")
    check(cfg.lora_r > 0, f"lora_r={cfg.lora_r} must be > 0")
    check(cfg.lora_alpha > 0, f"lora_alpha={cfg.lora_alpha} must be > 0")
    check(0 <= cfg.lora_dropout < 1, f"lora_dropout={cfg.lora_dropout} must be in [0, 1)")
    check(0 < cfg.train_split < 1, f"train_split={cfg.train_split} must be in (0, 1)")
    check(cfg.dataset_sample >= 0, f"dataset_sample={cfg.dataset_sample} must be >= 0 (0 = all)")
    check(cfg.max_data_per_client >= 0, f"max_data_per_client={cfg.max_data_per_client} must be >= 0 (0 = no cap)")
    check(cfg.max_eval_size >= 0, f"max_eval_size={cfg.max_eval_size} must be >= 0 (0 = no cap)")
    check(cfg.batch_size >= 1, f"batch_size={cfg.batch_size} must be >= 1")
    check(cfg.batch_size_eval >= 1, f"batch_size_eval={cfg.batch_size_eval} must be >= 1")
    check(cfg.gradient_accumulation_steps >= 1 and cfg.batch_size % max(1, cfg.gradient_accumulation_steps) == 0,
          f"gradient_accumulation_steps={cfg.gradient_accumulation_steps} must be >= 1 and divide batch_size={cfg.batch_size}")
    check(cfg.max_steps >= 0, f"max_steps={cfg.max_steps} must be >= 0 (0 = use num_train_epochs)")
    check(cfg.max_steps > 0 or cfg.num_train_epochs >= 1,
          f"num_train_epochs={cfg.num_train_epochs} must be >= 1 when max_steps=0")
    check(cfg.seq_length >= 16, f"seq_length={cfg.seq_length} must be >= 16")
    check(cfg.max_new_tokens >= 1, f"max_new_tokens={cfg.max_new_tokens} must be >= 1")
    check(cfg.lr > 0 and 0 <= cfg.lr_min <= cfg.lr, f"lr={cfg.lr} must be > 0 and lr_min={cfg.lr_min} in [0, lr]")
    check(0 <= cfg.max_failure_rate <= 1, f"max_failure_rate={cfg.max_failure_rate} must be in [0, 1]")
    check(cfg.client_resources_cpus >= 1, f"client_resources_cpus={cfg.client_resources_cpus} must be >= 1")
    check(cfg.client_resources_gpus >= 0, f"client_resources_gpus={cfg.client_resources_gpus} must be >= 0")
    check(not (cfg.load_in_4bit and cfg.load_in_8bit), "load_in_4bit and load_in_8bit cannot both be true")
    if cfg.fed_alg == "fedcluster":
        check(1 <= cfg.sim_round <= cfg.num_rounds, f"sim_round={cfg.sim_round} must be in 1..num_rounds={cfg.num_rounds}")
    try:
        cfg.fault_for(-1, -1)
    except (ValueError, IndexError):
        out.append(f"inject_fault={cfg.inject_fault!r} must be 'client:round[:nan]' entries, comma-separated")
    out += _cluster_problems(cfg)
    if sources:
        out += source_problems(cfg, partition=not out)
    return out


def _cluster_problems(cfg: RunConfig) -> list[str]:
    out = []
    try:
        lo, hi = cfg.k_bounds()
        if not 2 <= lo <= hi:
            out.append(f"k_range={cfg.k_range!r} must be 'min,max' with 2 <= min <= max")
    except ValueError:
        out.append(f"k_range={cfg.k_range!r} must be 'min,max', e.g. '2,8'")
    for name in ("n_clusters", "global_n_clusters"):
        value = getattr(cfg, name)
        if value == "auto":
            continue
        try:
            k = int(value)
        except ValueError:
            out.append(f"{name}={value!r} must be a positive integer or 'auto'")
            continue
        if k < 1:
            out.append(f"{name}={k} must be >= 1 (or 'auto')")
    # The global k-means clusters num_clients x n_clusters local centroids.
    if cfg.fed_alg == "fedcluster" and cfg.global_n_clusters.isdigit() and int(cfg.global_n_clusters) > cfg.num_clients:
        out.append(f"global_n_clusters={cfg.global_n_clusters} groups is more than num_clients={cfg.num_clients}")
    if cfg.fed_alg in ("fedrouter", "clustered") and cfg.global_n_clusters.isdigit() and cfg.n_clusters.isdigit():
        points = cfg.num_clients * int(cfg.n_clusters)
        if int(cfg.global_n_clusters) > points:
            out.append(f"global_n_clusters={cfg.global_n_clusters} is larger than the {points} local centroids "
                       f"to cluster (num_clients={cfg.num_clients} x n_clusters={cfg.n_clusters})")
    return out


def source_problems(cfg: RunConfig, partition: bool = True) -> list[str]:
    """Can this machine load the data and the model the settings name? With `partition`, the data is
    loaded and split into the clients' shards too (cached per process, so that work is not lost):
    missing columns, a task too small for the split, or n_clusters above every client's data size
    are reported here instead of failing inside a client mid-run."""
    from fedrouter.models.loader import bitsandbytes_problem, model_available_offline
    from fedrouter.models.tiny import is_builtin

    out = []
    name = cfg.dataset_name
    if name not in ("builtin", "multitask") and not Path(name).expanduser().exists():
        out.append(f"dataset_name={name!r}: no such file or folder; allowed: builtin, multitask, or a path to "
                   "JSONL/CSV/parquet data with instruction/response/task columns")
    if name == "multitask" and os.environ.get("FEDROUTER_MULTITASK_DIR"):
        if not Path(os.environ["FEDROUTER_MULTITASK_DIR"]).exists():
            out.append(f"FEDROUTER_MULTITASK_DIR={os.environ['FEDROUTER_MULTITASK_DIR']!r} does not exist")
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
    largest = max(len(c.train) for c in clients)
    if cfg.fed_alg in ("fedrouter", "clustered") and cfg.n_clusters.isdigit() and int(cfg.n_clusters) > largest:
        out.append(f"n_clusters={cfg.n_clusters} is larger than every client's training set (the largest has "
                   f"{largest} samples); a client with fewer samples than n_clusters uses fewer clusters, but "
                   "none can have this many")
    return out


def validate(cfg: RunConfig, sources: bool = True) -> None:
    found = problems(cfg, sources)
    if found:
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(found))
