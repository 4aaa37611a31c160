"""Tests for fedrouter.data.sources: builtin/multitask/local dispatch, readers and their errors (cleaning,
capping and caching the pool are in tests/data/sources/test_pool.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import BENCHMARK_TASKS, SHARED_DATA, make_rows, needs_sample, pool_counts, write_jsonl
from fedrouter.data.sources import DatasetError, clear_pool_cache, load_pool

SAMPLE = SHARED_DATA
TASKS = BENCHMARK_TASKS


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The pool cache is per process; tests must not see each other's pools.
    clear_pool_cache()
    yield
    clear_pool_cache()



# ----------------------------------------------------------------------------------------- real sample


@needs_sample
def test_real_sample_folder_is_the_benchmark():
    pool = load_pool(str(SAMPLE), 0, 0)
    counts = pool_counts(pool)
    assert {t for t, _ in counts} == set(TASKS)
    for task in TASKS:
        assert counts[(task, "train")] == 2000
        assert 400 <= counts[(task, "test")] <= 500
    # Extra columns such as 'source' are dropped.
    assert all(set(r) == {"instruction", "response", "task", "split"} for r in pool)


@needs_sample
def test_multitask_dir_env_loads_local_folder(monkeypatch):
    monkeypatch.setenv("FEDROUTER_MULTITASK_DIR", str(SAMPLE))
    pool = load_pool("multitask", 0, 0)
    counts = pool_counts(pool)
    assert {t for t, _ in counts} == set(TASKS)
    assert all(counts[(t, "train")] == 2000 for t in TASKS)


# ------------------------------------------------------------------------------------- hub / offline


def test_multitask_offline_fails_fast_with_local_folder_hint(monkeypatch, tmp_path):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("FEDROUTER_MULTITASK_DIR", raising=False)
    # Empty caches, so the result does not depend on what this machine has downloaded before.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"), raising=False)
    before = datasets.config.HF_HUB_OFFLINE
    with pytest.raises(DatasetError) as err:
        load_pool("multitask", 0, 0)
    msg = str(err.value)
    assert "local folder" in msg and "FEDROUTER_MULTITASK_DIR" in msg and "builtin" in msg
    # The library's offline switch, forced on for the attempt, is restored afterwards.
    assert datasets.config.HF_HUB_OFFLINE == before


def test_builtin_dispatch():
    builtin = pytest.importorskip("fedrouter.data.builtin")
    pool = load_pool("builtin", 5, 0)
    assert {r["task"] for r in pool} <= set(builtin.TASKS)
    assert max(Counter(r["task"] for r in pool).values()) <= 5


# ------------------------------------------------------------------------------------------ local files


def test_single_jsonl_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(4, source="x", extra=1))
    pool = load_pool(str(path), 0, 0)
    assert pool == [{"instruction": f"q{i}-p{i}", "response": "Yes", "task": "qqp"} for i in range(4)]


def test_json_csv_parquet_and_folder(tmp_path):
    import pandas as pd

    rows = make_rows(3, task="samsum", split="train") + make_rows(2, task="webnlg", split="test")
    (tmp_path / "a.json").write_text(json.dumps(rows[:1]), encoding="utf-8")
    pd.DataFrame(rows[1:3]).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame(rows[3:]).to_parquet(tmp_path / "c.parquet")
    (tmp_path / "README.md").write_text("ignored", encoding="utf-8")
    for name, expected in (("a.json", rows[:1]), ("b.csv", rows[1:3]), ("c.parquet", rows[3:])):
        assert load_pool(str(tmp_path / name), 0, 0) == expected
    # A folder reads every supported file, sorted by name.
    assert load_pool(str(tmp_path), 0, 0) == rows


def test_csv_keeps_text_like_na_and_numbers_as_strings(tmp_path):
    (tmp_path / "d.csv").write_text(
        "instruction,response,task\nIs it?,NA,qqp\n2+2,4,qqp\n,x,qqp\n", encoding="utf-8"
    )
    pool = load_pool(str(tmp_path / "d.csv"), 0, 0)
    assert [r["response"] for r in pool] == ["NA", "4"]  # the row with an empty instruction is dropped


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = make_rows(3, task="gigaword")
    Dataset.from_list([{**r, "split": "train"} for r in rows]).save_to_disk(str(tmp_path / "ds"))
    assert load_pool(str(tmp_path / "ds"), 0, 0) == [{**r, "split": "train"} for r in rows]

    dd = DatasetDict({"train": Dataset.from_list(rows[:2]), "test": Dataset.from_list(rows[2:])})
    dd.save_to_disk(str(tmp_path / "dd"))
    pool = load_pool(str(tmp_path / "dd"), 0, 0)
    # Split names of a DatasetDict become the records' split.
    assert sorted((r["instruction"], r["split"]) for r in pool) == [
        ("q0-p0", "train"),
        ("q1-p1", "train"),
        ("q2-p2", "test"),
    ]

    DatasetDict({"validation": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DatasetError, match="validation"):
        load_pool(str(tmp_path / "bad"), 0, 0)


def test_missing_columns_error_names_columns_and_file(tmp_path):
    path = write_jsonl(tmp_path / "nocols.jsonl", [{"instruction": "a", "answer": "b"}])
    with pytest.raises(DatasetError) as err:
        load_pool(str(path), 0, 0)
    msg = str(err.value)
    assert "response" in msg and "task" in msg and "nocols.jsonl" in msg


def test_missing_path_error_names_path(tmp_path):
    with pytest.raises(DatasetError, match="does_not_exist"):
        load_pool(str(tmp_path / "does_not_exist"), 0, 0)


def test_bad_split_value_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", make_rows(2, split="train") + make_rows(1, split="dev"))
    with pytest.raises(DatasetError, match="'dev'"):
        load_pool(str(path), 0, 0)


def test_folder_without_data_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DatasetError, match="no .*files"):
        load_pool(str(tmp_path), 0, 0)
