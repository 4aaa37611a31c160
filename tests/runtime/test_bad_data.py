"""Bad input: validation of data and model at start (launcher and clients), and a run on messy data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import tiny_settings
from fedrouter.config import ConfigError, RunConfig
from fedrouter.runtime.simulate import simulate
from fedrouter.validation import validate

TASKS = ("qqp", "gigaword", "samsum", "webnlg")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(task: str, n: int, split: str | None = None, start: int = 0) -> list[dict]:
    extra = {"split": split} if split else {}
    return [{"instruction": f"{task} input {i}", "response": f"{task} output {i}", "task": task, **extra}
            for i in range(start, start + n)]


def _problem(cfg: RunConfig) -> str:
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    return str(err.value)


def test_missing_columns_are_reported_before_anything_loads(tmp_path):
    path = _write(tmp_path / "d.jsonl", [{"instruction": "a", "answer": "b"}])
    msg = _problem(RunConfig(dataset_name=str(path)))
    assert f"dataset_name={str(path)!r}" in msg and "missing required column(s) response, task" in msg


def test_task_too_small_for_the_split_is_a_clear_error(tmp_path):
    rows = [r for t in TASKS for r in _rows(t, 20)] [:-19]  # webnlg keeps a single record
    path = _write(tmp_path / "d.jsonl", rows)
    msg = _problem(RunConfig(dataset_name=str(path), dataset_sample=0, num_clients=8, sample_clients=8))
    assert "task 'webnlg' has 1 train records but 2 clients need a disjoint shard each" in msg


def test_n_clusters_above_every_clients_data(tmp_path):
    path = _write(tmp_path / "d.jsonl", [r for t in TASKS for r in _rows(t, 10)])
    msg = _problem(RunConfig.from_mapping({"dataset_name": str(path), "dataset_sample": 0, "num_clients": 4,
                                           "sample_clients": 4, "n_clusters": "9", "global_n_clusters": "4"}))
    assert "n_clusters=9 is larger than every client's training set (the largest has 8 samples)" in msg


def test_four_bit_without_bitsandbytes(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    msg = _problem(RunConfig(load_in_4bit=True))
    assert "load_in_4bit/load_in_8bit asked for, but bitsandbytes is not installed" in msg


def test_clients_report_their_data_problems_at_discovery(tmp_path, monkeypatch):
    """Where the launcher does not validate (flwr run, deployment), the clients check their own data
    at discovery and the server stops before round 1 with their message."""
    import fedrouter.validation

    monkeypatch.setattr(fedrouter.validation, "validate", lambda cfg, sources=True: None)  # driver-side check off
    cfg = tiny_settings(tmp_path, dataset_name=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="as checked on the clients"):
        simulate(cfg)
    log = (cfg.run_dir / "log.txt").read_text()
    assert "invalid settings, as checked on the clients" in log
    assert "no such file or folder" in log and "clients [0, 1, 2, 3]" in log
    assert not (cfg.run_dir / "metrics.jsonl").exists()  # nothing trained, nothing half-written


def test_messy_data_runs_end_to_end(tmp_path):
    """Empty and whitespace rows are dropped with a count, duplicates too, non-ASCII text and a very
    long input pass through, and a client with fewer samples than n_clusters uses fewer clusters."""
    from fedrouter.data.sources import load_pool

    rows = _rows("qqp", 1, "train") + _rows("qqp", 1, "test", start=1)  # client 0: one training sample
    for t in TASKS[1:]:
        rows += _rows(t, 6, "train") + _rows(t, 2, "test", start=6)
    rows += [{"instruction": "Café naïve – 東京 ☕ résumé?", "response": "Ça va, 東京!", "task": "samsum", "split": "train"},
             {"instruction": "long " * 3000, "response": "short", "task": "gigaword", "split": "train"},
             {"instruction": "   ", "response": "x", "task": "qqp", "split": "train"},
             {"instruction": "y", "response": "\n\t", "task": "webnlg", "split": "train"},
             dict(rows[3])]  # an exact duplicate
    path = _write(tmp_path / "messy.jsonl", rows)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    data_log = logging.getLogger("fedrouter.data")
    data_log.addHandler(handler)
    data_log.setLevel(logging.INFO)
    try:
        pool = load_pool(str(path), 0, 0)  # what the launcher's validation and every client load
    finally:
        data_log.removeHandler(handler)
        data_log.setLevel(logging.NOTSET)
    assert any("dropped 2 empty and 1 duplicate records" in r.getMessage() for r in seen)
    assert any(r["instruction"].startswith("Café naïve – 東京") for r in pool)
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", dataset_name=str(path), dataset_sample=0, n_clusters="2",
                        global_n_clusters="4", num_rounds=1, eval_round="1", max_steps=1, seq_length=64)
    results = simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["failures"] == {}
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    # k reduced on the one-sample client; the built-in word-level tokenizer maps the made-up words
    # of this file to <unk>, so the other clients' inputs embed alike too (fewer distinct points)
    assert diag["k_local"]["0"] == 1 and all(1 <= k <= 2 for k in diag["k_local"].values())
    assert results["final"]["num_samples"] == 7  # 1 qqp + 2 x 3 other test records
