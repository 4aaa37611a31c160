"""Typed run settings, built once from a flat key=value mapping and validated before anything loads."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Reference-code names for the evaluation router, mapped onto (router, test distribution).
EVALUATION_MODES: dict[str, tuple[str, str]] = {
    "local": ("local", "same"),
    "global": ("global", "all"),
    "data_local_eval_global": ("global", "same"),
    "data_global_eval_local": ("local", "all"),
}
ROUTERS = ("local", "global")
TEST_DISTRIBUTIONS = ("same", "all")
EMBEDDINGS = ("base", "sentence")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


def _f(default: Any, help: str) -> Any:  # noqa: A002 - 'help' mirrors dataclass metadata convention
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run. Keys match the launcher variables and `[tool.flwr.app.config]`."""

    # --- data -----------------------------------------------------------------------------------
    dataset_name: str = _f("builtin", "builtin | multitask | path to a JSONL/CSV/parquet file or folder")
    dataset_sample: int = _f(400, "records per task taken from the source before the split (0 = all)")
    split_strategy: str = _f("single", "single | dual | all (aliases: multitask_clusters, ...)")
    test_distribution: str = _f("", "same | all; empty = implied by evaluation_mode")
    train_split: float = _f(0.8, "share of each task's pool used for training (ignored with a split column)")
    max_data_per_client: int = _f(0, "cap on training records per client (0 = no cap)")
    max_eval_size: int = _f(40, "cap on test records per client (0 = no cap)")
    num_clients: int = _f(8, "number of clients (virtual SuperNodes)")
    sample_clients: int = _f(8, "clients sampled for training each round")
    # --- model ----------------------------------------------------------------------------------
    model_name_or_path: str = _f("builtin:tiny", "builtin:tiny | hub id | local folder")
    gguf_file: str = _f("", "GGUF file name inside model_name_or_path (optional)")
    load_in_4bit: bool = _f(False, "bitsandbytes NF4 4-bit base model (double quant)")
    load_in_8bit: bool = _f(False, "bitsandbytes 8-bit base model")
    dtype: str = _f("auto", "auto | float32 | bfloat16 | float16 (auto: bf16 on GPU, fp32 on CPU)")
    gpu: bool = _f(True, "use a GPU when one is visible")
    lora_r: int = _f(8, "LoRA rank")
    lora_alpha: int = _f(16, "LoRA alpha")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    lora_target_modules: str = _f("", "comma-separated module names; empty = PEFT's default for the model")
    # --- local training -------------------------------------------------------------------------
    num_rounds: int = _f(20, "federated rounds")
    max_steps: int = _f(10, "optimizer steps per client per round (0 = use num_train_epochs)")
    num_train_epochs: int = _f(1, "epochs over the client's data per round when max_steps = 0")
    batch_size: int = _f(16, "samples per optimizer step (split by gradient_accumulation_steps)")
    gradient_accumulation_steps: int = _f(1, "micro-batches per optimizer step")
    seq_length: int = _f(160, "max tokens of prompt + response in training")
    lr: float = _f(2e-3, "learning rate of round 1; cosine over rounds down to lr_min (paper: 5e-4 for Llama-3.2-1B)")
    lr_min: float = _f(1e-5, "learning rate floor of the cosine schedule")
    # --- evaluation -----------------------------------------------------------------------------
    eval_round: str = _f("0,5,10,20", "comma-separated rounds at which to evaluate (and save adapters); 0 = the base model before training (zero-shot)")
    batch_size_eval: int = _f(32, "prompts per generation batch")
    max_new_tokens: int = _f(40, "generation length cap")
    evaluation_mode: str = _f("", "local | global | data_local_eval_global | data_global_eval_local")
    router: str = _f("", "local | global; empty = implied by evaluation_mode (FedRouter only)")
    # --- algorithm ------------------------------------------------------------------------------
    fed_alg: str = _f("fedrouter", "fedrouter (alias clustered) | fedit | local | fedcluster | fedsa | feddpa")
    n_clusters: str = _f("1", "local clusters per client (FedRouter); int or auto")
    global_n_clusters: str = _f("4", "global clusters (FedRouter) / client groups (FedCluster); int or auto")
    k_range: str = _f("2,8", "min,max k tried by auto (silhouette)")
    train_all_clusters: bool = _f(False, "FedRouter: train every local cluster each round")
    embedding: str = _f("base", "base (mean last hidden state) | sentence (sentence-transformers)")
    sentence_model: str = _f("", "sentence-transformers model path; empty = packaged all-MiniLM-L6-v2")
    sim_round: int = _f(3, "FedCluster: round at which clients are grouped")
    diagnostics: bool = _f(True, "FedRouter analysis outputs: clients send per-cluster counts of the true task labels (aggregates, never per-sample labels) for purity, ARI and routing accuracy, and silhouette curves over k_range are computed even with a fixed k; false in a real federation")
    # --- run ------------------------------------------------------------------------------------
    seed: int = _f(0, "seed of the split, LoRA init, batches and k-means")
    output_dir: str = _f("output", "parent folder of the run folders")
    sim_alias: str = _f("run", "run name; the run folder is <output_dir>/<sim_alias>_seed<seed>")
    resume: bool = _f(True, "continue from the last completed round when the run folder has a checkpoint")
    max_failure_rate: float = _f(0.5, "stop the run when more than this share of a round's clients fail")
    inject_fault: str = _f("", "testing aid: 'client:round[:nan]' entries, comma-separated; that client's training raises (or returns NaN)")
    client_resources_cpus: int = _f(1, "CPUs per virtual client (Ray): workers = CPUs / this, each with this many torch threads (also the torch threads of a deployed ClientApp)")
    client_resources_gpus: float = _f(0.0, "GPUs per virtual client (Ray); fractions share a device")
    ray_address: str = _f("", "simulation: Ray cluster to run the clients on (host:port of its head, or auto); empty = start a private local Ray")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> RunConfig:
        """Build from strings or typed values; unknown keys and unparsable values are errors."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k.replace("-", "_") not in fields)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}; known settings: {sorted(fields)}")
        kwargs: dict[str, Any] = {}
        problems = []
        for key, raw in values.items():
            name = key.replace("-", "_")
            kind = type(fields[name].default)
            try:
                kwargs[name] = _coerce(raw, kind)
            except ValueError:
                problems.append(f"{name}={raw!r}: expected {kind.__name__}")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / f"{self.sim_alias}_seed{self.seed}"

    @property
    def eval_rounds(self) -> tuple[int, ...]:
        """Rounds with evaluation; the last round is always one so every run ends with a score."""
        rounds = {int(x) for x in self.eval_round.replace(" ", "").split(",") if x}
        rounds.add(self.num_rounds)
        return tuple(sorted(rounds))

    @property
    def resolved_router(self) -> str:
        if self.router:
            return self.router
        return EVALUATION_MODES[self.evaluation_mode][0] if self.evaluation_mode else "global"

    @property
    def resolved_test_distribution(self) -> str:
        if self.test_distribution:
            return self.test_distribution
        return EVALUATION_MODES[self.evaluation_mode][1] if self.evaluation_mode else "same"

    @property
    def target_modules(self) -> list[str] | None:
        mods = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
        return mods or None

    def fault_for(self, client_id: int, rnd: int) -> str | None:
        """'raise' or 'nan' if inject_fault targets this client's training in this round."""
        for entry in filter(None, (e.strip() for e in self.inject_fault.split(","))):
            parts = entry.split(":")
            if int(parts[0]) == client_id and int(parts[1]) == rnd:
                return parts[2] if len(parts) > 2 else "raise"
        return None

    def k_bounds(self) -> tuple[int, int]:
        lo, hi = (int(x) for x in self.k_range.split(","))
        return lo, hi

    def lr_at(self, rnd: int) -> float:
        """Cosine schedule over rounds (rnd is 1-based), constant within a round."""
        progress = (rnd - 1) / max(1, self.num_rounds - 1)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * progress))

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _coerce(raw: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(raw)
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError(raw)
        value = float(raw)
        if value != int(value):
            raise ValueError(raw)
        return int(value)
    if kind is float:
        return float(raw)
    return str(raw)


def help_table() -> str:
    """Markdown table of every setting, its default and meaning (used by the README and --help)."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(RunConfig):
        meaning = f.metadata["help"].replace("|", "\\|")  # a bare | would split the cell
        rows.append(f"| `{f.name}` | `{f.default}` | {meaning} |")
    return "\n".join(rows)
