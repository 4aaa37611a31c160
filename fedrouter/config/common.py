"""The common settings, one section each: data, model, LoRA, training, evaluation, run. Each section
checks its own values; checks that relate settings of two sections are in `cross_checks`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedrouter.config.section import Section, register_section, setting
from fedrouter.config.values import FaultList, NameList, RoundList, TaskSelection

if TYPE_CHECKING:
    from fedrouter.config.run import RunConfig

SPLIT_STRATEGIES = ("single", "dual", "multi", "all", "dirichlet")
SPLIT_ALIASES = {"multitask_clusters": "single", "multitask_multi_domain": "dual", "multitask_iid": "all"}
TEST_DISTRIBUTIONS = ("same", "all")
GENERATION_BATCHING = ("auto", "grouped", "mixed")  # how routed test samples are decoded (steps/batching.py)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _allowed(key: str, value: object, allowed) -> list[str]:
    return [] if value in allowed else [f"{key}={value!r} is not known; allowed: {', '.join(allowed)}"]


@register_section
@dataclass(frozen=True)
class DataSettings(Section):
    name = "data"
    title = "Data and its split into clients"

    dataset_name: str = setting("builtin", "builtin | multitask | path to a JSONL/CSV/parquet file or folder | Hugging Face dataset id (docs/data.md)")
    dataset_sample: int = setting(400, "records per task taken from the source before the split (0 = all)")
    split_strategy: str = setting("single", "single | dual | multi (tasks_per_client each) | all | dirichlet (aliases: multitask_clusters, ...)")
    test_distribution: str = setting("same", "same (each client tested on its own tasks) | all (on every task: the generalization scenario)")
    train_split: float = setting(0.8, "share of each task's pool used for training (ignored with a split column)")
    max_data_per_client: int = setting(0, "cap on training records per client (0 = no cap)")
    max_eval_size: int = setting(40, "cap on test records per client (0 = no cap)")
    dataset_config: str = setting("", "hub dataset_name only: the dataset's config (subset); empty = its default")
    dataset_split: str = setting("train", "hub dataset_name only: the split loaded (e.g. train, or train+validation)")
    instruction_column: str = setting("instruction", "local or hub data: column holding the instruction (the prompt)")
    response_column: str = setting("response", "local or hub data: column holding the response (the target)")
    task_column: str = setting("task", "local or hub data: column holding the task name (required)")
    input_column: str = setting("", "local or hub data: optional input/context column; when set and not blank for a record, the instruction becomes instruction + \"\\n\\n\" + input (empty inputs leave it unchanged); empty = none")
    tasks_per_client: int = setting(2, "split_strategy=multi: consecutive tasks each client holds (1 to the number of training tasks)")
    dirichlet_alpha: float = setting(0.5, "split_strategy=dirichlet: concentration of each client's task proportions (> 0; small = one task per client, large = every task)")
    dirichlet_min_records: int = setting(10, "split_strategy=dirichlet: training records every client must get (>= 1; the proportions are redrawn until it does)")
    unseen_tasks: TaskSelection = setting(TaskSelection(""), "tasks no client trains on, tested only under test_distribution=all: comma-separated task names, auto (tasks with test records but no training records) or empty (none)")
    num_clients: int = setting(8, "number of clients (virtual SuperNodes)")
    sample_clients: int = setting(8, "clients sampled for training each round")

    def check(self, run: RunConfig) -> list[str]:
        split = SPLIT_ALIASES.get(self.split_strategy, self.split_strategy)
        out = [] if split in SPLIT_STRATEGIES else [
            f"split_strategy={self.split_strategy!r} is not known; allowed: {', '.join(SPLIT_STRATEGIES + tuple(SPLIT_ALIASES))}"]
        out += _allowed("test_distribution", self.test_distribution, TEST_DISTRIBUTIONS)
        checks = [
            (self.tasks_per_client >= 1,
             f"tasks_per_client={self.tasks_per_client} must be >= 1 (allowed: 1 to the number of training tasks)"),
            (0 < self.dirichlet_alpha < math.inf,
             f"dirichlet_alpha={self.dirichlet_alpha} must be a finite number > 0 (small: one task per client, large: every task)"),
            (self.dirichlet_min_records >= 1, f"dirichlet_min_records={self.dirichlet_min_records} must be >= 1"),
            (self.num_clients >= 1, f"num_clients={self.num_clients} must be >= 1"),
            (1 <= self.sample_clients <= self.num_clients,
             f"sample_clients={self.sample_clients} must be between 1 and num_clients={self.num_clients}"),
            (0 < self.train_split < 1, f"train_split={self.train_split} must be in (0, 1)"),
            (self.dataset_sample >= 0, f"dataset_sample={self.dataset_sample} must be >= 0 (0 = all)"),
            (self.max_data_per_client >= 0, f"max_data_per_client={self.max_data_per_client} must be >= 0 (0 = no cap)"),
            (self.max_eval_size >= 0, f"max_eval_size={self.max_eval_size} must be >= 0 (0 = no cap)"),
        ]
        return out + [msg for ok, msg in checks if not ok]


@register_section
@dataclass(frozen=True)
class ModelSettings(Section):
    name = "model"
    title = "Base model"

    model_name_or_path: str = setting("builtin:tiny", "builtin:tiny | hub id | local folder")
    gguf_file: str = setting("", "GGUF file name inside model_name_or_path (optional)")
    load_in_4bit: bool = setting(False, "bitsandbytes NF4 4-bit base model (double quant)")
    load_in_8bit: bool = setting(False, "bitsandbytes 8-bit base model")
    dtype: str = setting("auto", "auto | float32 | bfloat16 | float16 (auto: bf16 on GPU, fp32 on CPU)")
    gpu: bool = setting(True, "use a GPU when one is visible")

    def check(self, run: RunConfig) -> list[str]:
        out = _allowed("dtype", self.dtype, DTYPES)
        if self.load_in_4bit and self.load_in_8bit:
            out.append("load_in_4bit and load_in_8bit cannot both be true")
        return out


@register_section
@dataclass(frozen=True)
class LoraSettings(Section):
    name = "lora"
    title = "LoRA adapters"

    lora_r: int = setting(8, "LoRA rank")
    lora_alpha: int = setting(16, "LoRA alpha")
    lora_dropout: float = setting(0.05, "LoRA dropout")
    lora_target_modules: NameList = setting(NameList(""), "comma-separated module names; empty = PEFT's default for the model")

    def check(self, run: RunConfig) -> list[str]:
        checks = [(self.lora_r > 0, f"lora_r={self.lora_r} must be > 0"),
                  (self.lora_alpha > 0, f"lora_alpha={self.lora_alpha} must be > 0"),
                  (0 <= self.lora_dropout < 1, f"lora_dropout={self.lora_dropout} must be in [0, 1)")]
        return [msg for ok, msg in checks if not ok]


@register_section
@dataclass(frozen=True)
class TrainingSettings(Section):
    name = "training"
    title = "Federated rounds and local training"

    num_rounds: int = setting(20, "federated rounds")
    max_steps: int = setting(10, "optimizer steps per client per round (0 = use num_train_epochs)")
    num_train_epochs: int = setting(1, "epochs over the client's data per round when max_steps = 0")
    batch_size: int = setting(16, "samples per optimizer step (split by gradient_accumulation_steps)")
    gradient_accumulation_steps: int = setting(1, "micro-batches per optimizer step")
    seq_length: int = setting(160, "max tokens of prompt + response in training")
    lr: float = setting(2e-3, "learning rate of round 1; cosine over rounds down to lr_min (paper: 5e-4 for Llama-3.2-1B)")
    lr_min: float = setting(1e-5, "learning rate floor of the cosine schedule")

    def check(self, run: RunConfig) -> list[str]:
        checks = [
            (self.num_rounds >= 1, f"num_rounds={self.num_rounds} must be >= 1"),
            (self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1"),
            (self.gradient_accumulation_steps >= 1 and self.batch_size % max(1, self.gradient_accumulation_steps) == 0,
             f"gradient_accumulation_steps={self.gradient_accumulation_steps} must be >= 1 and divide batch_size={self.batch_size}"),
            (self.max_steps >= 0, f"max_steps={self.max_steps} must be >= 0 (0 = use num_train_epochs)"),
            (self.max_steps > 0 or self.num_train_epochs >= 1,
             f"num_train_epochs={self.num_train_epochs} must be >= 1 when max_steps=0"),
            (self.seq_length >= 16, f"seq_length={self.seq_length} must be >= 16"),
            (self.lr > 0 and 0 <= self.lr_min <= self.lr, f"lr={self.lr} must be > 0 and lr_min={self.lr_min} in [0, lr]"),
        ]
        return [msg for ok, msg in checks if not ok]


@register_section
@dataclass(frozen=True)
class EvaluationSettings(Section):
    name = "evaluation"
    title = "Evaluation"

    eval_round: RoundList = setting(RoundList("0,5,10,20"), "comma-separated rounds at which to evaluate (and save adapters); 0 = the base model before training (zero-shot)")
    batch_size_eval: int = setting(32, "prompts per generation batch")
    max_new_tokens: int = setting(40, "generation length cap")
    generation_batching: str = setting("auto", "test samples routed to several adapters: mixed = one batch per client with each row's own adapter (batched per-row LoRA; PEFT's mixed-adapter batches for LoRA variants it does not cover), grouped = one routed group after another, auto = whichever measured decode steps say is faster")
    metrics: str = setting("rouge1,rouge2,rougeL", "comma-separated metrics every task is scored by (the first is the headline): rouge1, rouge2, rougeL, exact_match, chrf, bleu, or one registered with fedrouter.metrics.register_metric")
    task_metrics: str = setting("", "per-task metrics instead of `metrics`, e.g. qqp=exact_match;gigaword=rouge1,rougeL (task=metrics entries, ';'-separated); tasks not named use `metrics`; empty = none")

    def check(self, run: RunConfig) -> list[str]:
        out = _allowed("generation_batching", self.generation_batching, GENERATION_BATCHING)
        checks = [(self.batch_size_eval >= 1, f"batch_size_eval={self.batch_size_eval} must be >= 1"),
                  (self.max_new_tokens >= 1, f"max_new_tokens={self.max_new_tokens} must be >= 1")]
        return out + [msg for ok, msg in checks if not ok]


@register_section
@dataclass(frozen=True)
class RunSettings(Section):
    name = "run"
    title = "The run: algorithm, seed, output, failures, resources"

    fed_alg: str = setting("", "the algorithm; empty = the proposed one (FedRouter); each algorithm's own settings are listed below")
    seed: int = setting(0, "seed of the split, LoRA init, batches and k-means")
    output_dir: str = setting("output", "parent folder of the run folders")
    sim_alias: str = setting("", "run name; the run folder is <output_dir>/<sim_alias>_seed<seed>; empty = <fed_alg>_<split_strategy>")
    resume: bool = setting(True, "continue from the last completed round when the run folder has a checkpoint")
    max_failure_rate: float = setting(0.5, "stop the run when more than this share of a round's clients fail")
    reply_timeout: float = setting(0.0, "seconds the server waits for the clients' replies at each stage (setup, train, evaluate); a client that has not answered by then is a failed client of that round; 0 = wait without limit")
    inject_fault: FaultList = setting(FaultList(""), "testing aid: 'client:round[:nan|:hang]' entries, comma-separated; that client's training raises (or returns NaN, or sleeps 2 x reply_timeout before answering)")
    client_resources_cpus: int = setting(1, "CPUs per virtual client (Ray): workers = CPUs / this, each with this many torch threads (also the torch threads of a deployed ClientApp)")
    client_resources_gpus: float = setting(0.0, "GPUs per virtual client (Ray); fractions share a device")
    ray_address: str = setting("", "simulation: Ray cluster to run the clients on (host:port of its head, or auto); empty = start a private local Ray")

    def check(self, run: RunConfig) -> list[str]:
        checks = [
            (0 <= self.max_failure_rate <= 1, f"max_failure_rate={self.max_failure_rate} must be in [0, 1]"),
            (self.reply_timeout >= 0, f"reply_timeout={self.reply_timeout} must be >= 0 seconds (0 = no limit)"),
            (self.reply_timeout > 0 or "hang" not in {m for _, _, m in self.inject_fault.entries},
             f"inject_fault={str(self.inject_fault)!r} uses hang, which needs reply_timeout > 0 (it is {self.reply_timeout})"),
            (self.client_resources_cpus >= 1, f"client_resources_cpus={self.client_resources_cpus} must be >= 1"),
            (self.client_resources_gpus >= 0, f"client_resources_gpus={self.client_resources_gpus} must be >= 0"),
        ]
        return [msg for ok, msg in checks if not ok]


def cross_checks(run: RunConfig) -> list[str]:
    """Checks that relate settings of different sections."""
    out = []
    bad = [r for r in run.eval_round.rounds if not 0 <= r <= run.num_rounds]
    if bad:
        out.append(f"eval_round={str(run.eval_round)!r} has rounds {bad} outside 0..num_rounds={run.num_rounds} "
                   "(0 = the base model before training)")
    return out
