"""The record pool of a `dataset_name`: the registered source that takes the name loads it, then the records are
cleaned (blank and duplicate rows dropped) and capped per task; pools are cached per process."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Hashable, Iterable
from typing import Any

from fedrouter.data.sources.base import DatasetError, DataSource, SourceOptions, allowed, source_for
from fedrouter.utils import process_state

logger = logging.getLogger("fedrouter.data")


def load_pool(dataset_name: str, dataset_sample: int, seed: int, options: SourceOptions | None = None) -> list[dict]:
    """Load the record pool named by `dataset_name`, cleaned, with at most `dataset_sample` records per task.

    The registered sources (fedrouter/data/sources/__init__.py) say which names they take: 'builtin',
    'multitask', an existing path (a local file or folder), anything else shaped like a hub id (`name` or
    `org/name`). `options` (SourceOptions.from_config(cfg)) maps the columns of local and hub data.
    Records are {"instruction", "response", "task"} plus "split" when the source provides one.
    The pool is cached per process; each call returns fresh dicts so callers may mutate them freely.
    """
    name = str(dataset_name).strip()
    if not name:
        raise DatasetError(f"dataset_name is empty: use {allowed('brief')}")
    if isinstance(dataset_sample, bool) or not isinstance(dataset_sample, int) or dataset_sample < 0:
        raise DatasetError(
            f"dataset_sample must be an integer >= 0 (0 = all records), got {dataset_sample!r}"
        )
    source = source_for(name)
    where, opts = source.locate(name, options or SourceOptions())
    return [dict(r) for r in _load_pool_cached(source, where, dataset_sample, seed, opts)]


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


@process_state.cached(maxsize=16)
def _load_pool_cached(source: DataSource, where: Hashable, dataset_sample: int, seed: int, opts: SourceOptions
                      ) -> tuple[dict, ...]:
    raw, label = source.load(where, opts, dataset_sample, seed)
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
