"""The local source: it takes every name no other source takes, keys its pools on the resolved path, and
validation reports a missing path (readers and column mapping: tests/data/test_sources.py and
test_column_mapping.py)."""

from __future__ import annotations

import json

from fedrouter.config import RunConfig
from fedrouter.data.sources import load_pool, source_for


def _folder(path, task):
    path.mkdir()
    (path / "d.jsonl").write_text(json.dumps({"instruction": "q", "response": "a", "task": task}) + "\n")


def test_every_name_no_other_source_takes_is_a_path():
    for name in ("a:b", "", "./x", "../up", "org/data.parquet"):
        assert source_for(name).name == "local"


def test_a_relative_path_is_resolved_so_another_folder_is_another_pool(tmp_path, monkeypatch):
    _folder(tmp_path / "one", "first")
    (tmp_path / "two").mkdir()
    _folder(tmp_path / "two" / "one", "second")
    monkeypatch.chdir(tmp_path)
    assert load_pool("one", 0, 0)[0]["task"] == "first"
    monkeypatch.chdir(tmp_path / "two")
    assert load_pool("one", 0, 0)[0]["task"] == "second"


def test_problems_missing_path_then_empty_columns(tmp_path):
    source = source_for("x.jsonl")
    cfg = RunConfig().replace(dataset_name=str(tmp_path / "x.jsonl"), response_column="")
    missing, empty = source.problems(cfg)
    assert missing.startswith(f"dataset_name={str(tmp_path / 'x.jsonl')!r}: no such file or folder; allowed: builtin")
    assert empty == "response_column is empty: it must name a column of the data"
    _folder(tmp_path / "d", "t")
    assert source.problems(cfg.replace(dataset_name=str(tmp_path / "d"), response_column="response")) == []
