"""fedrouter.data.sources.pool: a dataset's record pool cleaned (blank and duplicate rows dropped), capped
per task keeping split proportions, and cached per process without callers changing the cache."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from conftest import BENCHMARK_TASKS, SHARED_DATA, make_rows, needs_sample, pool_counts, write_jsonl
from fedrouter.data.sources import DatasetError, clean_records, load_pool

SAMPLE = SHARED_DATA
TASKS = BENCHMARK_TASKS



@needs_sample
def test_dataset_sample_caps_per_task_keeping_split_proportions():
    a = load_pool(str(SAMPLE), 120, 1)
    counts = pool_counts(a)
    for task in TASKS:
        assert counts[(task, "train")] + counts[(task, "test")] == 120
        assert counts[(task, "test")] >= 19  # about 1/6 (qqp) to 1/5 (gigaword) of the task stays test
    assert a == load_pool(str(SAMPLE), 120, 1)
    assert a != load_pool(str(SAMPLE), 120, 2)


def test_bad_dataset_sample():
    with pytest.raises(DatasetError, match="dataset_sample"):
        load_pool("builtin", -1, 0)


def test_clean_recordspool_counts():
    recs = [
        {"instruction": "a", "response": "b", "task": "qqp"},
        {"instruction": "a", "response": "b", "task": "qqp", "split": "test"},  # duplicate triple
        {"instruction": "a", "response": "b", "task": "samsum"},  # other task: kept
        {"instruction": "  \n", "response": "b", "task": "qqp"},
        {"instruction": "c", "response": "", "task": "qqp"},
        {"instruction": "d", "response": None, "task": "qqp"},
    ]
    kept, counts = clean_records(recs)
    assert counts == {"empty": 3, "duplicate": 1, "kept": 2}
    assert kept == [recs[0], recs[2]]


def test_load_pool_drops_and_logs(tmp_path, caplog):
    rows = make_rows(3) + make_rows(2) + [{"instruction": " ", "response": "x", "task": "qqp"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.INFO, logger="fedrouter.data"):
        pool = load_pool(str(path), 0, 0)
    assert len(pool) == 3
    assert "dropped 1 empty and 2 duplicate records" in caplog.text


def test_cached_pool_is_not_mutable_by_callers(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(2))
    first = load_pool(str(path), 0, 0)
    first[0]["instruction"] = "changed"
    first.append({"instruction": "z", "response": "z", "task": "qqp"})
    assert load_pool(str(path), 0, 0) == make_rows(2)


def test_an_empty_name_is_refused_with_what_is_allowed():
    with pytest.raises(DatasetError, match="dataset_name is empty: use "):
        load_pool("  ", 0, 0)


def test_the_cap_is_per_task_seeded_and_keeps_the_order(tmp_path):
    rows = make_rows(10, task="qqp") + make_rows(3, task="samsum")
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    capped = load_pool(str(path), 4, 0)
    assert pool_counts(capped) == Counter({("qqp", None): 4, ("samsum", None): 3})  # a small task is kept whole
    assert capped == sorted(capped, key=rows.index)  # original order
    assert capped == load_pool(str(path), 4, 0) and load_pool(str(path), 0, 0) == rows


def test_a_split_keeps_its_proportions_when_capped(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(30, split="train") + [
        {"instruction": f"t{i}", "response": "No", "task": "qqp", "split": "test"} for i in range(10)])
    assert pool_counts(load_pool(str(path), 8, 3)) == Counter({("qqp", "train"): 6, ("qqp", "test"): 2})
