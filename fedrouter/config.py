"""Typed run settings, built once from a flat key=value mapping and validated before anything loads."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedrouter.utils.names import did_you_mean

# The reference launcher's `evaluation_mode`, an alias resolved once into (router, test_distribution);
# the router part applies to an algorithm that has a `router` setting.
EVALUATION_MODES: dict[str, tuple[str, str]] = {
    "local": ("local", "same"),
    "global": ("global", "all"),
    "data_local_eval_global": ("global", "same"),
    "data_global_eval_local": ("local", "all"),
}
TEST_DISTRIBUTIONS = ("same", "all")
GENERATION_BATCHING = ("auto", "grouped", "mixed")  # how routed test samples are decoded (steps/evaluate.py)
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


def setting(default: Any, help: str) -> Any:  # noqa: A002 - 'help' mirrors dataclass metadata convention
    """A settings field: its default and the one-line meaning shown by --list-settings and the docs."""
    return field(default=default, metadata={"help": help})


_f = setting


@dataclass(frozen=True)
class AlgorithmSettings:
    """An algorithm's own settings (PEFT's per-method config classes show the habit): subclass it
    with `setting(...)` fields, and override `check` to return one message per invalid value. Keys
    are flat in the run config (`mu=0.1`), so a subclass's field names are its settings' names."""

    def check(self, run: RunConfig) -> list[str]:
        """Problems with these settings in the context of the run's common settings (empty = valid)."""
        return []

    def check_data(self, run: RunConfig, train_sizes: list[int]) -> list[str]:
        """Problems that show only once the data is partitioned (training records per client)."""
        return []

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run. Keys match the launcher variables and `[tool.flwr.app.config]`."""

    # --- data -----------------------------------------------------------------------------------
    dataset_name: str = _f("builtin", "builtin | multitask | path to a JSONL/CSV/parquet file or folder | Hugging Face dataset id (docs/data.md)")
    dataset_sample: int = _f(400, "records per task taken from the source before the split (0 = all)")
    split_strategy: str = _f("single", "single | dual | multi (tasks_per_client each) | all | dirichlet (aliases: multitask_clusters, ...)")
    test_distribution: str = _f("same", "same (each client tested on its own tasks) | all (on every task: the generalization scenario)")
    train_split: float = _f(0.8, "share of each task's pool used for training (ignored with a split column)")
    max_data_per_client: int = _f(0, "cap on training records per client (0 = no cap)")
    max_eval_size: int = _f(40, "cap on test records per client (0 = no cap)")
    dataset_config: str = _f("", "hub dataset_name only: the dataset's config (subset); empty = its default")
    dataset_split: str = _f("train", "hub dataset_name only: the split loaded (e.g. train, or train+validation)")
    instruction_column: str = _f("instruction", "local or hub data: column holding the instruction (the prompt)")
    response_column: str = _f("response", "local or hub data: column holding the response (the target)")
    task_column: str = _f("task", "local or hub data: column holding the task name (required)")
    input_column: str = _f("", "local or hub data: optional input/context column; when set and not blank for a record, the instruction becomes instruction + \"\\n\\n\" + input (empty inputs leave it unchanged); empty = none")
    tasks_per_client: int = _f(2, "split_strategy=multi: consecutive tasks each client holds (1 to the number of training tasks)")
    dirichlet_alpha: float = _f(0.5, "split_strategy=dirichlet: concentration of each client's task proportions (> 0; small = one task per client, large = every task)")
    dirichlet_min_records: int = _f(10, "split_strategy=dirichlet: training records every client must get (>= 1; the proportions are redrawn until it does)")
    unseen_tasks: str = _f("", "tasks no client trains on, tested only under test_distribution=all: comma-separated task names, auto (tasks with test records but no training records) or empty (none)")
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
    generation_batching: str = _f("auto", "test samples routed to several adapters: mixed = one batch per client with each row's own adapter (batched per-row LoRA; PEFT's mixed-adapter batches for LoRA variants it does not cover), grouped = one routed group after another, auto = whichever measured decode steps say is faster")
    # --- algorithm ------------------------------------------------------------------------------
    fed_alg: str = _f("", "the algorithm; empty = the proposed one (FedRouter); each algorithm's own settings are listed below")
    # --- run ------------------------------------------------------------------------------------
    seed: int = _f(0, "seed of the split, LoRA init, batches and k-means")
    output_dir: str = _f("output", "parent folder of the run folders")
    sim_alias: str = _f("", "run name; the run folder is <output_dir>/<sim_alias>_seed<seed>; empty = <fed_alg>_<split_strategy>")
    resume: bool = _f(True, "continue from the last completed round when the run folder has a checkpoint")
    max_failure_rate: float = _f(0.5, "stop the run when more than this share of a round's clients fail")
    reply_timeout: float = _f(0.0, "seconds the server waits for the clients' replies at each stage (setup, train, evaluate); a client that has not answered by then is a failed client of that round; 0 = wait without limit")
    inject_fault: str = _f("", "testing aid: 'client:round[:nan|:hang]' entries, comma-separated; that client's training raises (or returns NaN, or sleeps 2 x reply_timeout before answering)")
    client_resources_cpus: int = _f(1, "CPUs per virtual client (Ray): workers = CPUs / this, each with this many torch threads (also the torch threads of a deployed ClientApp)")
    client_resources_gpus: float = _f(0.0, "GPUs per virtual client (Ray); fractions share a device")
    ray_address: str = _f("", "simulation: Ray cluster to run the clients on (host:port of its head, or auto); empty = start a private local Ray")
    # --- the algorithm's own settings (its registry entry's settings class) ----------------------
    alg: AlgorithmSettings = field(default=None, metadata={"help": "settings of fed_alg"})  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.fed_alg:
            from fedrouter.algorithms.base import default_algorithm

            object.__setattr__(self, "fed_alg", default_algorithm())
        if not self.sim_alias:
            object.__setattr__(self, "sim_alias", f"{self.fed_alg}_{self.split_strategy}")
        if self.alg is None:  # RunConfig() alone: the algorithm's defaults
            object.__setattr__(self, "alg", settings_class(self.fed_alg)())

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: dict[str, Any], strict: bool = True) -> RunConfig:
        """Build from flat key=value settings (strings or typed values), read once: the common ones go
        to RunConfig, fed_alg's own ones to its settings class, `evaluation_mode` is resolved into
        router + test_distribution. Unknown keys, unparsable values and another algorithm's setting
        given a non-default value are errors; another algorithm's keys at their defaults (as
        `flwr run` passes every key of pyproject's config) are ignored; `strict=False` ignores them
        whatever their value (reading run folders written before each algorithm owned its settings)."""
        values = {k.replace("-", "_"): v for k, v in values.items()}
        common = {f.name: f for f in common_fields()}
        fed_alg = str(values.get("fed_alg") or "")
        if not fed_alg:
            from fedrouter.algorithms.base import default_algorithm

            fed_alg = values["fed_alg"] = default_algorithm()
        own_cls = settings_class(fed_alg)  # raises ConfigError naming the known algorithms
        own = {f.name: f for f in dataclasses.fields(own_cls)}
        problems: list[str] = []
        mode = str(values.pop("evaluation_mode", "") or "")
        for key in ("router", "test_distribution"):  # empty = not set (flwr config, old run folders)
            if values.get(key) == "":
                values.pop(key)
        if mode:
            if mode not in EVALUATION_MODES:
                raise ConfigError(f"evaluation_mode={mode!r} is not known; allowed: {', '.join(EVALUATION_MODES)}")
            for key, implied in zip(("router", "test_distribution"), EVALUATION_MODES[mode], strict=True):
                if key == "router" and key not in own:
                    continue
                if key in values and str(values[key]) != implied and strict:
                    problems.append(f"evaluation_mode={mode!r} means {key}={implied!r}, but {key}={values[key]!r} is set too")
                values.setdefault(key, implied)
        foreign = _other_algorithms_settings(fed_alg)
        unknown = sorted(k for k in values if k not in common and k not in own and k not in foreign)
        if unknown:
            raise ConfigError(f"unknown setting(s) {unknown}{did_you_mean(unknown, [*common, *own])}; known settings: {sorted(common)}; "
                              f"fed_alg={fed_alg} also has: {sorted(own) or 'none'}")
        run_kwargs: dict[str, Any] = {}
        alg_kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            target, f = (run_kwargs, common[key]) if key in common else (alg_kwargs, own.get(key))
            if f is None:  # another algorithm's setting: fine at its default, an error otherwise
                owner, default = foreign[key]
                try:
                    same = _coerce(raw, type(default)) == default
                except ValueError:
                    same = False
                if not same and strict:
                    problems.append(f"{key}={raw!r} is a setting of fed_alg={owner}; fed_alg={fed_alg} has no "
                                    f"setting {key!r} (its settings: {', '.join(sorted(own)) or 'none'})")
                continue
            try:
                target[key] = _coerce(raw, type(f.default))
            except ValueError:
                problems.append(f"{key}={raw!r}: expected {type(f.default).__name__}")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(**run_kwargs, alg=own_cls(**alg_kwargs))

    def to_dict(self) -> dict[str, Any]:
        """Flat: the common settings and the algorithm's own (what config.json records)."""
        out = {f.name: getattr(self, f.name) for f in common_fields()}
        out.update(dataclasses.asdict(self.alg))
        return out

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some flat settings changed (common or the algorithm's own)."""
        if "fed_alg" in changes and changes["fed_alg"] != self.fed_alg:  # the old algorithm's settings go
            common = {k: v for k, v in self.to_dict().items() if k not in self.alg.defaults()}
            return RunConfig.from_mapping({**common, **changes})
        own = {f.name for f in dataclasses.fields(self.alg)}
        alg_changes = {k: changes.pop(k) for k in list(changes) if k in own}
        alg = dataclasses.replace(self.alg, **alg_changes) if alg_changes else self.alg
        return dataclasses.replace(self, alg=alg, **changes)

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
    def target_modules(self) -> list[str] | None:
        mods = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
        return mods or None

    def faults(self) -> list[tuple[int, int, str]]:
        """inject_fault parsed: (client, round, 'raise' | 'nan' | 'hang') per entry; ValueError or
        IndexError for a malformed one."""
        out = []
        for entry in filter(None, (e.strip() for e in self.inject_fault.split(","))):
            parts = entry.split(":")
            mode = parts[2] if len(parts) > 2 else "raise"
            if mode not in ("raise", "nan", "hang") or len(parts) > 3:
                raise ValueError(entry)
            out.append((int(parts[0]), int(parts[1]), mode))
        return out

    def fault_for(self, client_id: int, rnd: int) -> str | None:
        """'raise', 'nan' or 'hang' if inject_fault targets this client's training in this round."""
        return next((mode for c, r, mode in self.faults() if (c, r) == (client_id, rnd)), None)

    def lr_at(self, rnd: int) -> float:
        """Cosine schedule over rounds (rnd is 1-based), constant within a round."""
        progress = (rnd - 1) / max(1, self.num_rounds - 1)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * progress))

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def parse_k_range(text: str) -> tuple[int, int]:
    """'min,max' -> (min, max): the k tried by an automatic choice of the number of clusters."""
    lo, hi = (int(x) for x in text.split(","))
    return lo, hi


def k_range_problems(text: str, name: str = "k_range", min_k: int = 2, why: str = "") -> list[str]:
    """Problems with a 'min,max' range of k whose min may not be below `min_k` (`why`: the reason, appended)."""
    try:
        lo, hi = parse_k_range(text)
    except ValueError:
        return [f"{name}={text!r} must be 'min,max', e.g. '2,8'"]
    return [] if min_k <= lo <= hi else [f"{name}={text!r} must be 'min,max' with {min_k} <= min <= max{why}"]


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


def settings_class(fed_alg: str) -> type[AlgorithmSettings]:
    from fedrouter.algorithms.base import get_algorithm

    try:
        return get_algorithm(fed_alg).settings
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _other_algorithms_settings(fed_alg: str) -> dict[str, tuple[str, Any]]:
    """key -> (owning algorithm, default) for the settings of every other registered algorithm."""
    from fedrouter.algorithms.base import algorithms

    own = settings_class(fed_alg)
    out: dict[str, tuple[str, Any]] = {}
    for alg in algorithms():
        if alg.settings is not own:
            for key, default in alg.settings.defaults().items():
                out.setdefault(key, (alg.name, default))
    return out


def flat_defaults() -> dict[str, Any]:
    """Every key a run config may hold, with its default: the common settings and each algorithm's
    own (the single definition that pyproject's [tool.flwr.app.config] and the docs are tested equal to)."""
    from fedrouter.algorithms.base import algorithms

    out = {f.name: f.default for f in common_fields()}
    out["evaluation_mode"] = ""
    for alg in algorithms():
        out.update(alg.settings.defaults())
    return out


def flwr_app_defaults() -> dict[str, Any]:
    """pyproject's [tool.flwr.app.config]: `flwr run` passes every key listed there, so a key written at
    its default there counts as set. `router` and `test_distribution` are written empty (= their
    default unless `evaluation_mode` implies another), so `--run-config "evaluation_mode='global'"` works."""
    return {**flat_defaults(), "router": "", "test_distribution": ""}


def common_fields() -> list[dataclasses.Field]:
    """RunConfig's own settings: every field but `alg`, the algorithm's settings object."""
    return [f for f in dataclasses.fields(RunConfig) if f.name != "alg"]


def _table(fields) -> list[str]:
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for f in fields:
        meaning = f.metadata["help"].replace("|", "\\|")  # a bare | would split the cell
        rows.append(f"| `{f.name}` | `{f.default}` | {meaning} |")
    return rows


def help_table() -> str:
    """Markdown tables of every setting, its default and meaning: the common settings, then each
    algorithm's own (used by docs/configuration.md and --list-settings)."""
    from fedrouter.algorithms.base import algorithms

    rows = _table(common_fields())
    rows.append("| `evaluation_mode` | `` | alias of the reference launcher: local = (router local, test same), "
                "global = (global, all), data_local_eval_global = (global, same), data_global_eval_local = "
                "(local, all); resolved once when settings are read |")
    for alg in algorithms():
        fields = dataclasses.fields(alg.settings)
        rows += ["", f"`fed_alg={alg.name}`" + (f" (alias {', '.join(alg.aliases)})" if alg.aliases else "")
                 + f": {alg.summary}" + ("" if fields else "; no settings of its own")]
        if fields:
            rows += ["", *_table(fields)]
    return "\n".join(rows)
