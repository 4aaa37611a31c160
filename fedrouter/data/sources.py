"""Turn a `dataset_name` (builtin, the paper's multitask benchmark, a local path or a Hugging Face hub dataset id)
into a record pool."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import random
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fedrouter.utils import process_state

logger = logging.getLogger("fedrouter.data")

REQUIRED_COLUMNS = ("instruction", "response", "task")
SPLIT_VALUES = ("train", "test")
BUILTIN_DEFAULT_PER_TASK = 250  # builtin pool size per task when dataset_sample is 0
MULTITASK_DIR_ENV = "FEDROUTER_MULTITASK_DIR"
HUB_MIRROR_ENV = "FEDROUTER_HUB_MIRROR"  # a folder <mirror>/<repo id>/<files as in the repo> replacing the hub
LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# Files that mark a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk.
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
HUB_FIRST_N = 30_000  # the paper keeps the first 30k of the shuffled QQP and Gigaword train splits
SCRIPT_ERROR = "Dataset scripts are no longer supported"  # datasets>=4 on a repo that holds a loading script
_TRUE = {"1", "ON", "YES", "TRUE"}
_SAMPLE_DIR = "path/to/multitask"  # how messages show a local copy of the benchmark (one file per task)
# `name` or `org/name`, as the hub spells dataset ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


class DatasetError(ValueError):
    """A data source cannot be loaded; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class SourceOptions:
    """How records are read from a local file/folder or a hub dataset: which columns hold the instruction,
    response and task (the run settings of the same names), an optional input/context column appended to the
    instruction, and the hub config and split. Hashable, so it is part of the pool cache key."""

    instruction_column: str = "instruction"
    response_column: str = "response"
    task_column: str = "task"
    input_column: str = ""  # "" = none; else instruction + "\n\n" + input for records whose input is not blank
    dataset_config: str = ""  # hub datasets only: the config (subset); "" = the dataset's default
    dataset_split: str = "train"  # hub datasets only

    @classmethod
    def from_config(cls, cfg: Any) -> SourceOptions:
        """The options a RunConfig (or any object with these attributes) names; absent ones keep defaults."""
        return cls(**{f.name: str(getattr(cfg, f.name, f.default)) for f in dataclasses.fields(cls)})

    def column_settings(self) -> dict[str, str]:
        """setting -> column, for the columns a record needs (input_column only when set)."""
        out = {"instruction_column": self.instruction_column, "response_column": self.response_column,
               "task_column": self.task_column}
        if self.input_column:
            out["input_column"] = self.input_column
        return out


DEFAULT_OPTIONS = SourceOptions()


# --------------------------------------------------------------------------------------------- public


def load_pool(dataset_name: str, dataset_sample: int, seed: int, options: SourceOptions | None = None) -> list[dict]:
    """Load the record pool named by `dataset_name`, cleaned, with at most `dataset_sample` records per task.

    'builtin' -> fedrouter.data.builtin.make_builtin_pool; 'multitask' -> the paper's benchmark from the
    parquet sources in MULTITASK_SOURCES (or the folder in $FEDROUTER_MULTITASK_DIR); an existing path -> a
    local file or folder; anything else shaped like a hub id (`name` or `org/name`) -> that Hugging Face hub
    dataset. `options` (SourceOptions.from_config(cfg)) maps the columns of local and hub data.
    Records are {"instruction", "response", "task"} plus "split" when the source provides one.
    The pool is cached per process; each call returns fresh dicts so callers may mutate them freely.
    """
    name = str(dataset_name).strip()
    opts = options or DEFAULT_OPTIONS
    if not name:
        raise DatasetError(
            "dataset_name is empty: use 'builtin', 'multitask', a path to a file or folder, or a hub dataset id"
        )
    if isinstance(dataset_sample, bool) or not isinstance(dataset_sample, int) or dataset_sample < 0:
        raise DatasetError(
            f"dataset_sample must be an integer >= 0 (0 = all records), got {dataset_sample!r}"
        )
    if name == "multitask":
        env_dir = os.environ.get(MULTITASK_DIR_ENV, "").strip()
        mirror = os.environ.get(HUB_MIRROR_ENV, "").strip()
        if env_dir:
            key = ("multitask-dir", _resolve(env_dir))
        else:
            key = ("multitask", _resolve(mirror) if mirror else "")
        opts = DEFAULT_OPTIONS  # the benchmark's own columns, whatever the column settings say
    elif name == "builtin":
        key, opts = ("builtin", ""), DEFAULT_OPTIONS
    elif is_hub_id(name):
        key = ("hub", name)
    else:
        key = ("path", _resolve(name))
    return [dict(r) for r in _load_pool_cached(key[0], key[1], dataset_sample, seed, opts)]


def is_hub_id(dataset_name: str) -> bool:
    """True when `dataset_name` is read as a Hugging Face hub dataset id: not builtin/multitask, not an
    existing path, no data-file suffix, and shaped like `name` or `org/name`."""
    name = str(dataset_name).strip()
    if name in ("builtin", "multitask") or not _HUB_ID.match(name) or ".." in name:
        return False
    path = Path(name).expanduser()
    return not path.exists() and path.suffix.lower() not in LOCAL_SUFFIXES


def clear_pool_cache() -> None:
    """Forget every pool loaded so far in this process (e.g. after files on disk changed)."""
    process_state.clear(_load_pool_cached)


def clean_records(records: Iterable[dict]) -> tuple[list[dict], dict[str, int]]:
    """Drop records with an empty/whitespace-only instruction or response and exact duplicate
    (instruction, response, task) rows (the first occurrence is kept, so a train row beats its test copy
    and the test set never leaks into training). Returns the kept records and the counts."""
    kept: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    empty = duplicate = 0
    for rec in records:
        instruction, response = rec.get("instruction"), rec.get("response")
        if not _non_blank(instruction) or not _non_blank(response):
            empty += 1
            continue
        key = (instruction, response, rec.get("task"))
        if key in seen:
            duplicate += 1
            continue
        seen.add(key)
        kept.append(rec)
    return kept, {"empty": empty, "duplicate": duplicate, "kept": len(kept)}


# ------------------------------------------------------------------------------------------- dispatch


@process_state.cached(maxsize=16)
def _load_pool_cached(kind: str, where: str, dataset_sample: int, seed: int, opts: SourceOptions
                      ) -> tuple[dict, ...]:
    if kind == "builtin":
        # Lazy import: the builtin generator is optional for every other source.
        from fedrouter.data.builtin import make_builtin_pool

        raw = make_builtin_pool(n_per_task=dataset_sample or BUILTIN_DEFAULT_PER_TASK, seed=seed)
        label = "builtin"
    elif kind == "multitask":
        raw = _load_hub_multitask(mirror=where or None)
        label = f"multitask ({HUB_MIRROR_ENV}={where})" if where else "multitask (Hugging Face hub)"
    elif kind == "multitask-dir":
        if not Path(where).exists():
            raise DatasetError(
                f"{MULTITASK_DIR_ENV} points at {where}, which does not exist; set it to a folder of "
                f"JSONL/CSV/parquet files (e.g. {_SAMPLE_DIR}) or unset it to use the Hugging Face hub"
            )
        raw = _load_local(Path(where), opts)
        label = f"multitask ({MULTITASK_DIR_ENV}={where})"
    elif kind == "hub":
        raw = _load_hub_dataset(where, opts)
        label = f"{where} (Hugging Face hub)"
    else:
        raw = _load_local(Path(where), opts)
        label = where
    records, counts = clean_records(raw)
    if counts["empty"] or counts["duplicate"]:
        logger.info(
            "%s: dropped %d empty and %d duplicate records (%d kept)",
            label,
            counts["empty"],
            counts["duplicate"],
            counts["kept"],
        )
    if not records:
        raise DatasetError(f"{label}: no usable records (every record was empty or a duplicate)")
    if dataset_sample:
        records = _cap_per_task(records, dataset_sample, seed)
    logger.info("%s: %d records over tasks %s", label, len(records), _task_counts(records))
    return tuple(records)


def _resolve(path: str) -> str:
    # Absolute path as the cache key, so a later chdir cannot return another folder's pool.
    return str(Path(path).expanduser().resolve())


def _non_blank(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _task_counts(records: Iterable[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return counts


def _cap_per_task(records: list[dict], cap: int, seed: int) -> list[dict]:
    """Keep at most `cap` records per task, chosen with a seed derived from (seed, task). A task with a
    split column keeps its train/test proportions (largest-remainder quotas), so capping never turns a
    provided test set into a sliver. Original order is preserved."""
    groups: dict[tuple[str, Any], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r["task"], r.get("split")), []).append(i)
    keep: set[int] = set()
    for task in dict.fromkeys(r["task"] for r in records):
        splits = [(s, idx) for (t, s), idx in groups.items() if t == task]
        total = sum(len(idx) for _, idx in splits)
        if total <= cap:
            keep.update(i for _, idx in splits for i in idx)
            continue
        exact = [cap * len(idx) / total for _, idx in splits]
        quotas = [math.floor(x) for x in exact]
        order = sorted(range(len(splits)), key=lambda j: (-(exact[j] - quotas[j]), j))
        for j in order[: cap - sum(quotas)]:
            quotas[j] += 1
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes.
        rng = random.Random(f"{seed}:cap:{task}")
        for (_, idx), q in zip(splits, quotas, strict=True):
            keep.update(rng.sample(idx, q))
    return [r for i, r in enumerate(records) if i in keep]


# ---------------------------------------------------------------------------------------- local data


def _load_local(path: Path, opts: SourceOptions = DEFAULT_OPTIONS) -> list[dict]:
    if not path.exists():
        raise DatasetError(
            f"dataset path {path} does not exist; dataset_name must be 'builtin', 'multitask', an existing "
            f"file ({', '.join(LOCAL_SUFFIXES)}) or folder of such files (e.g. {_SAMPLE_DIR}), or a Hugging "
            "Face hub dataset id (name or org/name)"
        )
    if path.is_dir():
        if any((path / m).is_file() for m in SAVED_MARKERS):
            return _load_saved(path, opts)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
        if not files:
            raise DatasetError(
                f"folder {path} holds no {'/'.join(LOCAL_SUFFIXES)} files and is not a folder written by "
                "datasets' save_to_disk"
            )
        return [r for f in files for r in _load_file(f, opts)]
    return _load_file(path, opts)


def _load_file(path: Path, opts: SourceOptions = DEFAULT_OPTIONS) -> list[dict]:
    builder = LOCAL_SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_SUFFIXES)}"
        )
    import datasets

    # CSV: keep empty cells as "" and texts like "NA"/"None" as text instead of turning them into nulls.
    kwargs: dict[str, Any] = {"na_filter": False} if builder == "csv" else {}
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as e:  # datasets raises many types for unreadable files; report them uniformly
        raise DatasetError(f"{path}: could not be read as {builder}: {type(e).__name__}: {e}") from e
    return _to_records(ds, str(path), opts)


def _load_saved(path: Path, opts: SourceOptions = DEFAULT_OPTIONS) -> list[dict]:
    import datasets

    try:
        with _quiet_datasets():
            loaded = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DatasetError(
            f"{path}: could not be read with datasets.load_from_disk: {type(e).__name__}: {e}"
        ) from e
    if isinstance(loaded, datasets.DatasetDict):
        # A DatasetDict's split names become the split of rows that have no split column of their own.
        return [
            r
            for name, ds in loaded.items()
            for r in _to_records(ds, f"{path} [{name}]", opts, default_split=name)
        ]
    return _to_records(loaded, str(path), opts)


def _to_records(ds: Any, where: str, opts: SourceOptions = DEFAULT_OPTIONS,
                default_split: str | None = None) -> list[dict]:
    """Map a Dataset's columns to records through the column settings; "split" is an optional column."""
    wanted = opts.column_settings()
    missing = {setting: col for setting, col in wanted.items() if col not in ds.column_names}
    if missing:
        raise DatasetError(
            f"{where}: missing required column(s) {', '.join(missing.values())} (named by "
            f"{', '.join(missing)}); found {', '.join(ds.column_names) or 'none'}. Set "
            f"{'/'.join(missing)} to this data's column names (instruction_column, response_column and "
            "task_column are required, input_column is optional; an optional 'split' column holds train/test)"
        )
    has_split = "split" in ds.column_names
    columns = list(dict.fromkeys([*wanted.values(), *(["split"] if has_split else [])]))
    # One bulk Arrow -> Python conversion; indexing a datasets Column row by row is ~100x slower.
    cols = ds.select_columns(columns).to_dict()
    records: list[dict] = []
    for i in range(len(ds)):
        instruction = _as_text(cols[opts.instruction_column][i])
        if opts.input_column:
            extra = _as_text(cols[opts.input_column][i])
            if extra.strip():
                instruction = f"{instruction}\n\n{extra}"
        rec = {
            "instruction": instruction,
            "response": _as_text(cols[opts.response_column][i]),
            "task": _as_text(cols[opts.task_column][i]),
        }
        split = cols["split"][i] if has_split else default_split
        # Null/blank split cells mean "no split given"; train_test_split then splits the pool itself.
        if split is not None and str(split) != "":
            if split not in SPLIT_VALUES:
                raise DatasetError(
                    f"{where}: row {i} has split value {split!r}; allowed values are 'train' and 'test' "
                    "(rename it, or drop the split column to split by train_split)"
                )
            rec["split"] = split
        records.append(rec)
    return records


def _as_text(value: Any) -> str:
    # Numbers (e.g. a CSV label column parsed as int) become text; nulls become "" and are dropped as empty.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' per-file progress bars while loading, restoring the caller's setting afterwards."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


# ----------------------------------------------------------------------------------- Hugging Face hub


def _offline_requested() -> bool:
    return any(
        os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _proxy_configured() -> bool:
    # Behind a proxy a direct TCP probe says nothing about reachability, so leave it to datasets.
    return any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
    )


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    # datasets retries an unreachable hub for ~25 s per file; a short TCP probe lets us go offline at once.
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_mode() -> tuple[bool, str]:
    """(offline, why): whether to use only the local cache, and the reason a failed load gives for it."""
    import datasets

    if _offline_requested() or bool(datasets.config.HF_HUB_OFFLINE):
        return True, "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and the data is not in the cache"
    if not _proxy_configured() and not _hub_reachable(datasets.config.HF_ENDPOINT):
        return True, f"{datasets.config.HF_ENDPOINT} is unreachable and the data is not in the cache"
    return False, ""


@contextlib.contextmanager
def _forced_offline(active: bool) -> Iterator[None]:
    """Make datasets/huggingface_hub use only the local cache. They read HF_HUB_OFFLINE once at import,
    so an env var set later (or an unreachable network) would otherwise still trigger slow retries."""
    if not active:
        yield
        return
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _is_script_error(exc: BaseException) -> bool:
    """datasets>=4 refusing a repo that holds a loading script (RuntimeError, or wrapped in another error)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if SCRIPT_ERROR in str(e):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _load_hub_dataset(repo_id: str, opts: SourceOptions) -> list[dict]:
    """Any hub dataset, loaded with datasets.load_dataset(id, config, split=...) and mapped by the columns."""
    import datasets

    offline, reason = _hub_mode()
    where = f"{repo_id} (config {opts.dataset_config or 'default'}, split {opts.dataset_split})"
    try:
        with _forced_offline(offline):
            ds = datasets.load_dataset(repo_id, opts.dataset_config or None, split=opts.dataset_split)
    except Exception as e:  # hub/cache errors come as ConnectionError, FileNotFoundError, ValueError, ...
        if _is_script_error(e):
            raise DatasetError(_script_help(repo_id, e)) from e
        if offline:
            raise DatasetError(
                f"dataset_name={repo_id!r} is not an existing file or folder, and as a Hugging Face hub dataset "
                f"it cannot be loaded: {reason}. Go online once (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) to "
                f"fill the cache, or pass a local file or folder [{type(e).__name__}: {e}]"
            ) from e
        raise DatasetError(
            f"dataset_name={repo_id!r} is not an existing file or folder, and loading it from the Hugging Face "
            f"hub failed (dataset_config={opts.dataset_config!r}, dataset_split={opts.dataset_split!r}): "
            f"{type(e).__name__}: {e}"
        ) from e
    if isinstance(ds, datasets.DatasetDict):  # defensive: split=... normally returns one Dataset
        return [r for name, part in ds.items() for r in _to_records(part, f"{where} [{name}]", opts)]
    return _to_records(ds, where, opts)


# ------------------------------------------------------------------ the paper's benchmark (multitask)


@dataclass(frozen=True)
class HubSource:
    """Where one task of the 'multitask' benchmark is loaded from: script-free parquet files of a hub repo
    at a fixed revision. `data_files` is a glob inside the repo; `first_n` caps the rows kept after
    shuffle(seed=0) (None = every row, unshuffled)."""

    task: str
    historical: str  # what the paper's code passed to load_dataset (a loading-script dataset today)
    repo_id: str
    config: str
    split: str
    revision: str
    data_files: str
    fields: tuple[str, ...]
    first_n: int | None

    def describe(self) -> str:
        return f"{self.repo_id}@{self.revision} ({self.data_files})"


MULTITASK_SOURCES: tuple[HubSource, ...] = (
    # GLUE's maintained parquet copy (its loading script was replaced by parquet files), at a pinned commit.
    HubSource("qqp", "glue/qqp", "nyu-mll/glue", "qqp", "train", "4c50f6d2c71ecad30a90f5da22d5392673f3ab05",
              "qqp/train-*.parquet", ("question1", "question2", "label"), HUB_FIRST_N),
    # The hub's automatic parquet conversion of the script dataset (same rows, same order).
    HubSource("gigaword", "gigaword", "Harvard/gigaword", "default", "train", "refs/convert/parquet",
              "default/train/*.parquet", ("document", "summary"), HUB_FIRST_N),
    # datasets' convert_to_parquet output for SAMSum (pull request #7 "Convert dataset to Parquet").
    HubSource("samsum", "samsum", "Samsung/samsum", "samsum", "train", "3f1f50730054c00d72523bf4f7562819b6371ada",
              "samsum/train-*.parquet", ("dialogue", "summary"), None),
    # The hub's automatic parquet conversion of GEM's WebNLG, config en.
    HubSource("webnlg", "GEM/web_nlg (en)", "GEM/web_nlg", "en", "train", "refs/convert/parquet",
              "en/train/*.parquet", ("input", "target"), None),
)
# Historical (script) names -> the source fedrouter loads instead, for messages.
_SCRIPT_REPLACEMENTS = {
    "glue": MULTITASK_SOURCES[0], "nyu-mll/glue": MULTITASK_SOURCES[0],
    "gigaword": MULTITASK_SOURCES[1], "Harvard/gigaword": MULTITASK_SOURCES[1],
    "samsum": MULTITASK_SOURCES[2], "Samsung/samsum": MULTITASK_SOURCES[2],
    "GEM/web_nlg": MULTITASK_SOURCES[3],
}
# task -> the commit (or mirror folder) its rows came from, this process
_LOADED_FROM: dict[str, str] = process_state.register(f"{__name__}._LOADED_FROM", {})


def multitask_sources() -> list[dict[str, Any]]:
    """The sources 'multitask' loads, one dict per task (task, historical name, repo_id, config, split,
    revision, data_files, fields, first_n), with `loaded_from`: the resolved commit or mirror folder of the
    last load in this process (None before one, or when offline and the revision is a branch name)."""
    return [{**dataclasses.asdict(s), "fields": list(s.fields), "loaded_from": _LOADED_FROM.get(s.task)}
            for s in MULTITASK_SOURCES]


def _script_help(name: str, exc: BaseException, src: HubSource | None = None) -> str:
    src = src or _SCRIPT_REPLACEMENTS.get(name)
    if src is not None:
        instead = (f"fedrouter loads {src.describe()} instead (dataset_name=multitask; for this task alone "
                   f"download those parquet files and pass their folder as dataset_name)")
    else:
        instead = ("look for a parquet copy of it on the hub (its refs/convert/parquet revision, or a maintained "
                   "copy) and pass that id, or download the files and pass their folder as dataset_name")
    return (f"{name} is a loading-script dataset, which datasets>=4 cannot load; {instead} "
            f"[{type(exc).__name__}: {exc}]")


def _offline_help(reason: str) -> str:
    return (
        f"cannot load the 'multitask' benchmark from the Hugging Face hub: {reason}. Either "
        f"(1) pass a local folder of JSONL/CSV/parquet files as dataset_name, e.g. "
        f"dataset_name={_SAMPLE_DIR}, or set {MULTITASK_DIR_ENV}={_SAMPLE_DIR} so 'multitask' loads it; "
        f"(2) set {HUB_MIRROR_ENV} to a folder holding the sources' parquet files as <repo id>/<file> "
        "(see docs/data.md); "
        "(3) use dataset_name=builtin for the small built-in data; or "
        "(4) go online once (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) to fill the Hugging Face cache."
    )


def _qqp_records(ds: Any) -> list[dict]:
    q = ds.select_columns(["question1", "question2", "label"]).to_dict()
    return [
        {"instruction": f"{q1}-{q2}", "response": "Yes" if label == 1 else "No", "task": "qqp"}
        for q1, q2, label in zip(q["question1"], q["question2"], q["label"], strict=True)
    ]


def _pair_records(task: str, source: str, target: str, stringify: bool = False) -> Callable[[Any], list[dict]]:
    def build(ds: Any) -> list[dict]:
        d = ds.select_columns([source, target]).to_dict()
        return [{"instruction": str(s) if stringify else s, "response": t, "task": task}
                for s, t in zip(d[source], d[target], strict=True)]

    return build


_BUILDERS: dict[str, Callable[[Any], list[dict]]] = {
    "qqp": _qqp_records,  # "question1-question2" -> Yes/No
    "gigaword": _pair_records("gigaword", "document", "summary"),
    "samsum": _pair_records("samsum", "dialogue", "summary"),
    "webnlg": _pair_records("webnlg", "input", "target", stringify=True),  # str(list of "s | p | o") -> text
}


def _load_source(src: HubSource, mirror: str | None) -> Any:
    import datasets

    if mirror:
        root = Path(mirror) / src.repo_id
        files = sorted(str(p) for p in root.glob(src.data_files) if p.is_file())
        if not files:
            raise DatasetError(
                f"{HUB_MIRROR_ENV}={mirror}: no files match {src.repo_id}/{src.data_files} (the mirror holds "
                f"each source's parquet files under <mirror>/<repo id>/ as in the repo at {src.revision})"
            )
        with _quiet_datasets():
            return datasets.load_dataset("parquet", data_files=files, split="train")
    return datasets.load_dataset(src.repo_id, data_files=src.data_files, revision=src.revision, split="train")


def _resolved_commit(src: HubSource, offline: bool) -> str | None:
    if re.fullmatch(r"[0-9a-f]{40}", src.revision):
        return src.revision
    if offline:
        return None
    try:
        import datasets
        from huggingface_hub import HfApi

        return HfApi(endpoint=datasets.config.HF_ENDPOINT).dataset_info(
            src.repo_id, revision=src.revision, timeout=10
        ).sha
    except Exception:  # recording the commit is best effort; the rows are already loaded
        return None


def _load_hub_multitask(mirror: str | None = None) -> list[dict]:
    """The paper's benchmark: QQP, Gigaword (first 30k of each shuffled train split), SAMSum, WebNLG, from
    the script-free parquet sources in MULTITASK_SOURCES (or their copies under `mirror`)."""
    if mirror and not Path(mirror).is_dir():
        raise DatasetError(f"{HUB_MIRROR_ENV} points at {mirror}, which is not a folder; unset it to use the hub")
    offline, reason = (False, "") if mirror else _hub_mode()
    records: list[dict] = []
    for src in MULTITASK_SOURCES:
        try:
            with _forced_offline(offline):
                ds = _load_source(src, mirror)
        except DatasetError:
            raise
        except Exception as e:  # hub/cache errors come as ConnectionError, FileNotFoundError, HfHubHTTPError, ...
            if _is_script_error(e):
                raise DatasetError(
                    f"multitask task {src.task}: {src.historical} is a loading-script dataset, which datasets>=4 "
                    f"cannot load; fedrouter loads {src.describe()} instead, but that revision answered with a "
                    f"loading script too [{type(e).__name__}: {e}]. Set {HUB_MIRROR_ENV} to a folder holding "
                    f"{src.repo_id}/{src.data_files}, or {MULTITASK_DIR_ENV} to a local copy of the benchmark"
                ) from e
            if offline:
                raise DatasetError(f"{_offline_help(reason)} [{src.task}: {type(e).__name__}: {e}]") from e
            raise DatasetError(
                f"multitask task {src.task}: could not load {src.describe()} from the Hugging Face hub: "
                f"{type(e).__name__}: {e}. If the files moved, set {HUB_MIRROR_ENV} to a folder holding "
                f"{src.repo_id}/{src.data_files}, or {MULTITASK_DIR_ENV} to a local copy of the benchmark"
            ) from e
        total = len(ds)
        if src.first_n is not None:
            ds = ds.shuffle(seed=0).select(range(min(src.first_n, total)))
        records += _BUILDERS[src.task](ds)
        if mirror:
            origin = _LOADED_FROM[src.task] = f"mirror:{Path(mirror) / src.repo_id}"
        else:
            _LOADED_FROM[src.task] = _resolved_commit(src, offline) or src.revision
            origin = f"{src.describe()}, commit {_LOADED_FROM[src.task]}"
        logger.info("multitask %s: %d of %d rows of %s (config %s, split %s) from %s", src.task, len(ds), total,
                    src.repo_id, src.config, src.split, origin)
    return records


def hub_dataset_problem(repo_id: str, config: str = "") -> str | None:
    """A quick check for validation: None unless offline mode is on and the hub dataset `repo_id` (config
    `config`) is not in the local datasets cache (or is a loading-script dataset). Online, problems are left
    to load time, where the error names them."""
    import datasets

    if not (_offline_requested() or datasets.config.HF_HUB_OFFLINE):
        return None
    try:
        with _forced_offline(True), _quiet_datasets():
            datasets.load_dataset_builder(repo_id, config or None)
    except Exception as e:
        if _is_script_error(e):
            return f"dataset_name={repo_id!r}: {_script_help(repo_id, e)}"
        return (f"dataset_name={repo_id!r} is not an existing file or folder, and as a Hugging Face hub dataset "
                f"(dataset_config={config!r}) it is not in the local datasets cache "
                f"({datasets.config.HF_DATASETS_CACHE}) while offline mode is on (HF_HUB_OFFLINE/"
                "HF_DATASETS_OFFLINE); go online once to download it, or pass a local file or folder")
    return None
