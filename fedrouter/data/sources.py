"""Turn a `dataset_name` (builtin, the Hugging Face multitask benchmark, or a local path) into a record pool."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import random
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger("fedrouter.data")

REQUIRED_COLUMNS = ("instruction", "response", "task")
SPLIT_VALUES = ("train", "test")
BUILTIN_DEFAULT_PER_TASK = 250  # builtin pool size per task when dataset_sample is 0
MULTITASK_DIR_ENV = "FEDROUTER_MULTITASK_DIR"
LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# Files that mark a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk.
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
HUB_FIRST_N = 30_000  # the paper keeps the first 30k of the shuffled QQP and Gigaword train splits
_TRUE = {"1", "ON", "YES", "TRUE"}
_SAMPLE_DIR = "path/to/multitask"  # how messages show a local copy of the benchmark (one file per task)


class DatasetError(ValueError):
    """A data source cannot be loaded; the message says what is wrong and how to fix it."""


# --------------------------------------------------------------------------------------------- public


def load_pool(dataset_name: str, dataset_sample: int, seed: int) -> list[dict]:
    """Load the record pool named by `dataset_name`, cleaned, with at most `dataset_sample` records per task.

    'builtin' -> fedrouter.data.builtin.make_builtin_pool; 'multitask' -> the paper's benchmark from the
    Hugging Face hub (or the folder in $FEDROUTER_MULTITASK_DIR); anything else -> a local file or folder.
    Records are {"instruction", "response", "task"} plus "split" when the source provides one.
    The pool is cached per process; each call returns fresh dicts so callers may mutate them freely.
    """
    name = str(dataset_name).strip()
    if not name:
        raise DatasetError("dataset_name is empty: use 'builtin', 'multitask' or a path to a file or folder")
    if isinstance(dataset_sample, bool) or not isinstance(dataset_sample, int) or dataset_sample < 0:
        raise DatasetError(
            f"dataset_sample must be an integer >= 0 (0 = all records), got {dataset_sample!r}"
        )
    if name == "multitask":
        env_dir = os.environ.get(MULTITASK_DIR_ENV, "").strip()
        key = ("multitask-dir", _resolve(env_dir)) if env_dir else ("multitask", "")
    elif name == "builtin":
        key = ("builtin", "")
    else:
        key = ("path", _resolve(name))
    return [dict(r) for r in _load_pool_cached(key[0], key[1], dataset_sample, seed)]


def clear_pool_cache() -> None:
    """Forget every pool loaded so far in this process (e.g. after files on disk changed)."""
    _load_pool_cached.cache_clear()


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


@functools.lru_cache(maxsize=16)
def _load_pool_cached(kind: str, where: str, dataset_sample: int, seed: int) -> tuple[dict, ...]:
    if kind == "builtin":
        # Lazy import: the builtin generator is optional for every other source.
        from fedrouter.data.builtin import make_builtin_pool

        raw = make_builtin_pool(n_per_task=dataset_sample or BUILTIN_DEFAULT_PER_TASK, seed=seed)
        label = "builtin"
    elif kind == "multitask":
        raw = _load_hub_multitask()
        label = "multitask (Hugging Face hub)"
    elif kind == "multitask-dir":
        if not Path(where).exists():
            raise DatasetError(
                f"{MULTITASK_DIR_ENV} points at {where}, which does not exist; set it to a folder of "
                f"JSONL/CSV/parquet files (e.g. {_SAMPLE_DIR}) or unset it to use the Hugging Face hub"
            )
        raw = _load_local(Path(where))
        label = f"multitask ({MULTITASK_DIR_ENV}={where})"
    else:
        raw = _load_local(Path(where))
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


def _load_local(path: Path) -> list[dict]:
    if not path.exists():
        raise DatasetError(
            f"dataset path {path} does not exist; dataset_name must be 'builtin', 'multitask', or an existing "
            f"file ({', '.join(LOCAL_SUFFIXES)}) or folder of such files (e.g. {_SAMPLE_DIR})"
        )
    if path.is_dir():
        if any((path / m).is_file() for m in SAVED_MARKERS):
            return _load_saved(path)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
        if not files:
            raise DatasetError(
                f"folder {path} holds no {'/'.join(LOCAL_SUFFIXES)} files and is not a folder written by "
                "datasets' save_to_disk"
            )
        return [r for f in files for r in _load_file(f)]
    return _load_file(path)


def _load_file(path: Path) -> list[dict]:
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
    return _to_records(ds, str(path))


def _load_saved(path: Path) -> list[dict]:
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
            r for name, ds in loaded.items() for r in _to_records(ds, f"{path} [{name}]", default_split=name)
        ]
    return _to_records(loaded, str(path))


def _to_records(ds: Any, where: str, default_split: str | None = None) -> list[dict]:
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise DatasetError(
            f"{where}: missing required column(s) {', '.join(missing)}; found {', '.join(ds.column_names) or 'none'}"
            f" (need {', '.join(REQUIRED_COLUMNS)}, optional 'split')"
        )
    has_split = "split" in ds.column_names
    # One bulk Arrow -> Python conversion; indexing a datasets Column row by row is ~100x slower.
    cols = ds.select_columns([*REQUIRED_COLUMNS, *(["split"] if has_split else [])]).to_dict()
    records: list[dict] = []
    for i in range(len(ds)):
        rec = {c: _as_text(cols[c][i]) for c in REQUIRED_COLUMNS}
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


def _offline_help(reason: str) -> str:
    return (
        f"cannot load the 'multitask' benchmark from the Hugging Face hub: {reason}. Either "
        f"(1) pass a local folder of JSONL/CSV/parquet files as dataset_name, e.g. "
        f"dataset_name={_SAMPLE_DIR}, or set {MULTITASK_DIR_ENV}={_SAMPLE_DIR} so 'multitask' loads it; "
        "(2) use dataset_name=builtin for the small built-in data; or "
        "(3) go online once (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) to fill the Hugging Face cache."
    )


def _load_hub_multitask() -> list[dict]:
    """The paper's benchmark: QQP, Gigaword (first 30k of each shuffled train split), SAMSum, WebNLG."""
    import datasets

    offline = _offline_requested() or bool(datasets.config.HF_HUB_OFFLINE)
    if offline:
        reason = (
            "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and the datasets are not in the cache"
        )
    elif not _proxy_configured() and not _hub_reachable(datasets.config.HF_ENDPOINT):
        offline = True
        reason = f"{datasets.config.HF_ENDPOINT} is unreachable and the datasets are not in the cache"
    else:
        reason = "download failed"
    records: list[dict] = []
    try:
        with _forced_offline(offline):
            qqp = datasets.load_dataset("glue", "qqp", split="train").shuffle(seed=0)
            qqp = qqp.select(range(min(HUB_FIRST_N, len(qqp))))
            q = qqp.select_columns(["question1", "question2", "label"]).to_dict()
            records += [
                {"instruction": f"{q1}-{q2}", "response": "Yes" if label == 1 else "No", "task": "qqp"}
                for q1, q2, label in zip(q["question1"], q["question2"], q["label"], strict=True)
            ]
            giga = datasets.load_dataset("gigaword", split="train").shuffle(seed=0)
            giga = giga.select(range(min(HUB_FIRST_N, len(giga))))
            g = giga.select_columns(["document", "summary"]).to_dict()
            records += [
                {"instruction": d, "response": s, "task": "gigaword"}
                for d, s in zip(g["document"], g["summary"], strict=True)
            ]
            sam = (
                datasets.load_dataset("samsum", split="train")
                .select_columns(["dialogue", "summary"])
                .to_dict()
            )
            records += [
                {"instruction": d, "response": s, "task": "samsum"}
                for d, s in zip(sam["dialogue"], sam["summary"], strict=True)
            ]
            web = (
                datasets.load_dataset("GEM/web_nlg", "en", split="train")
                .select_columns(["input", "target"])
                .to_dict()
            )
            records += [
                {"instruction": str(i), "response": t, "task": "webnlg"}
                for i, t in zip(web["input"], web["target"], strict=True)
            ]
    except DatasetError:
        raise
    except Exception as e:  # hub/cache errors come as ConnectionError, FileNotFoundError, HfHubHTTPError, ...
        raise DatasetError(f"{_offline_help(reason)} [{type(e).__name__}: {e}]") from e
    return records
