"""Checks every setting before any model or data loads; one message per problem, naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

from fedrouter.config import DTYPES, GENERATION_BATCHING, TEST_DISTRIBUTIONS, ConfigError, RunConfig
from fedrouter.data.splits import SPLIT_ALIASES
from fedrouter.data.splits import SPLIT_STRATEGIES as SPLITS
from fedrouter.metrics import selection_problems


def problems(cfg: RunConfig, sources: bool = True) -> list[str]:
    """Every problem found (empty list = valid). `sources=False` checks the settings alone; with
    `sources=True` the data and model they name are checked on this machine too (see
    `source_problems`), which is right wherever the data lives: the launcher, and each client."""
    out: list[str] = []

    def check(ok: bool, msg: str) -> None:
        if not ok:
            out.append(msg)

    split = SPLIT_ALIASES.get(cfg.split_strategy, cfg.split_strategy)
    check(split in SPLITS, f"split_strategy={cfg.split_strategy!r} is not known; allowed: "
          f"{', '.join(SPLITS + tuple(SPLIT_ALIASES))}")
    check(cfg.test_distribution in TEST_DISTRIBUTIONS,
          f"test_distribution={cfg.test_distribution!r} is not known; allowed: {', '.join(TEST_DISTRIBUTIONS)}")
    check(cfg.tasks_per_client >= 1,
          f"tasks_per_client={cfg.tasks_per_client} must be >= 1 (allowed: 1 to the number of training tasks)")
    check(0 < cfg.dirichlet_alpha < float("inf"),
          f"dirichlet_alpha={cfg.dirichlet_alpha} must be a finite number > 0 (small: one task per client, "
          "large: every task)")
    check(cfg.dirichlet_min_records >= 1, f"dirichlet_min_records={cfg.dirichlet_min_records} must be >= 1")
    check(cfg.dtype in DTYPES, f"dtype={cfg.dtype!r} is not known; allowed: {', '.join(DTYPES)}")

    check(cfg.num_clients >= 1, f"num_clients={cfg.num_clients} must be >= 1")
    check(1 <= cfg.sample_clients <= cfg.num_clients,
          f"sample_clients={cfg.sample_clients} must be between 1 and num_clients={cfg.num_clients}")
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
    check(cfg.generation_batching in GENERATION_BATCHING,
          f"generation_batching={cfg.generation_batching!r} is not allowed; allowed: {', '.join(GENERATION_BATCHING)}")
    out += selection_problems(cfg.metrics, cfg.task_metrics)
    check(cfg.gradient_accumulation_steps >= 1 and cfg.batch_size % max(1, cfg.gradient_accumulation_steps) == 0,
          f"gradient_accumulation_steps={cfg.gradient_accumulation_steps} must be >= 1 and divide batch_size={cfg.batch_size}")
    check(cfg.max_steps >= 0, f"max_steps={cfg.max_steps} must be >= 0 (0 = use num_train_epochs)")
    check(cfg.max_steps > 0 or cfg.num_train_epochs >= 1,
          f"num_train_epochs={cfg.num_train_epochs} must be >= 1 when max_steps=0")
    check(cfg.seq_length >= 16, f"seq_length={cfg.seq_length} must be >= 16")
    check(cfg.max_new_tokens >= 1, f"max_new_tokens={cfg.max_new_tokens} must be >= 1")
    check(cfg.lr > 0 and 0 <= cfg.lr_min <= cfg.lr, f"lr={cfg.lr} must be > 0 and lr_min={cfg.lr_min} in [0, lr]")
    check(0 <= cfg.max_failure_rate <= 1, f"max_failure_rate={cfg.max_failure_rate} must be in [0, 1]")
    check(cfg.reply_timeout >= 0, f"reply_timeout={cfg.reply_timeout} must be >= 0 seconds (0 = no limit)")
    check(cfg.client_resources_cpus >= 1, f"client_resources_cpus={cfg.client_resources_cpus} must be >= 1")
    check(cfg.client_resources_gpus >= 0, f"client_resources_gpus={cfg.client_resources_gpus} must be >= 0")
    check(not (cfg.load_in_4bit and cfg.load_in_8bit), "load_in_4bit and load_in_8bit cannot both be true")
    try:
        modes = {mode for _, _, mode in cfg.faults()}
    except (ValueError, IndexError):
        out.append(f"inject_fault={cfg.inject_fault!r} must be 'client:round[:nan|:hang]' entries, comma-separated")
    else:
        check(cfg.reply_timeout > 0 or "hang" not in modes,
              f"inject_fault={cfg.inject_fault!r} uses hang, which needs reply_timeout > 0 (it is {cfg.reply_timeout})")
    out += cfg.alg.check(cfg)  # the algorithm's own settings, checked by its settings class
    if sources:
        out += source_problems(cfg, partition=not out)
    return out


def source_problems(cfg: RunConfig, partition: bool = True) -> list[str]:
    """Can this machine load the data and the model the settings name? With `partition`, the data is
    loaded and split into the clients' shards too (cached per process, so that work is not lost):
    missing columns, a task too small for the split, or n_clusters above every client's data size
    are reported here instead of failing inside a client mid-run."""
    from fedrouter.data.sources import HUB_MIRROR_ENV, hub_dataset_problem, is_hub_id
    from fedrouter.models.loader import bitsandbytes_problem, model_available_offline
    from fedrouter.models.tiny import is_builtin

    out = []
    name = cfg.dataset_name
    if is_hub_id(name):  # not a path: a Hugging Face hub dataset id, checked against the cache when offline
        problem = hub_dataset_problem(name, cfg.dataset_config)
        if problem:
            out.append(problem)
    elif name not in ("builtin", "multitask") and not Path(name).expanduser().exists():
        out.append(f"dataset_name={name!r}: no such file or folder; allowed: builtin, multitask, a path to "
                   "JSONL/CSV/parquet data (columns named by instruction_column/response_column/task_column), "
                   "or a Hugging Face hub dataset id (name or org/name)")
    if name not in ("builtin", "multitask"):
        for key in ("instruction_column", "response_column", "task_column", "dataset_split"):
            if not str(getattr(cfg, key, "x")).strip():
                out.append(f"{key} is empty: it must name a column of the data" if key != "dataset_split"
                           else "dataset_split is empty: name the split to load, e.g. train")
    if name == "multitask" and os.environ.get("FEDROUTER_MULTITASK_DIR"):
        if not Path(os.environ["FEDROUTER_MULTITASK_DIR"]).exists():
            out.append(f"FEDROUTER_MULTITASK_DIR={os.environ['FEDROUTER_MULTITASK_DIR']!r} does not exist")
    elif name == "multitask" and os.environ.get(HUB_MIRROR_ENV):
        if not Path(os.environ[HUB_MIRROR_ENV]).is_dir():
            out.append(f"{HUB_MIRROR_ENV}={os.environ[HUB_MIRROR_ENV]!r} is not a folder")
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
