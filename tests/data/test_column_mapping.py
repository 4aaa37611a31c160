"""Column mapping (instruction/response/task/input columns) for local files and hub datasets, hub ids, and
the source checks of validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedrouter.data.sources import DatasetError, SourceOptions, clear_pool_cache, is_hub_id, load_pool

DOLLY = SourceOptions(task_column="category", input_column="context")  # instruction/response keep their names
FLAN = SourceOptions(instruction_column="inputs", response_column="targets", task_column="task_name")


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_pool_cache()
    yield
    clear_pool_cache()


def _dolly_rows() -> list[dict]:
    rows = []
    for i, category in enumerate(["open_qa", "closed_qa", "summarization", "brainstorming"] * 3):
        context = "" if i % 3 == 0 else ("   " if i % 3 == 1 else f"Passage {i} about {category}.")
        rows.append({"instruction": f"Question {i}?", "context": context, "response": f"Answer {i}.",
                     "category": category})
    return rows


def _write_dolly(tmp_path: Path) -> Path:
    path = tmp_path / "dolly.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _dolly_rows()), encoding="utf-8")
    return path


def _joined(row: dict) -> str:
    return f"{row['instruction']}\n\n{row['context']}" if row["context"].strip() else row["instruction"]


def _flan_rows() -> list[dict]:
    tasks = ["anli_r1", "cosmos_qa", "wmt16_translate_deen"]
    return [{"inputs": f"Input {i} of {t}", "targets": f"Target {i}", "task_name": t, "template_id": i % 4}
            for t in tasks for i in range(4)]


# ------------------------------------------------------------------------------------------ local files


def test_dolly_jsonl_joins_context_and_maps_category_to_task(tmp_path):
    path = _write_dolly(tmp_path)
    pool = load_pool(str(path), 0, 0, DOLLY)
    rows = _dolly_rows()
    assert pool == [{"instruction": _joined(r), "response": r["response"], "task": r["category"]} for r in rows]
    # Empty and whitespace-only contexts leave the instruction unchanged; others are appended after a blank line.
    assert pool[0]["instruction"] == "Question 0?"
    assert pool[1]["instruction"] == "Question 1?"
    assert pool[2]["instruction"] == "Question 2?\n\nPassage 2 about summarization."
    assert {r["task"] for r in pool} == {"open_qa", "closed_qa", "summarization", "brainstorming"}


def test_flan_parquet_maps_inputs_targets_task_name(tmp_path):
    import pandas as pd

    pd.DataFrame(_flan_rows()).to_parquet(tmp_path / "flan.parquet")
    pool = load_pool(str(tmp_path / "flan.parquet"), 0, 0, FLAN)
    assert pool == [{"instruction": r["inputs"], "response": r["targets"], "task": r["task_name"]}
                    for r in _flan_rows()]
    # dataset_sample still caps per (mapped) task.
    capped = load_pool(str(tmp_path / "flan.parquet"), 2, 0, FLAN)
    assert sorted(r["task"] for r in capped) == sorted(["anli_r1", "cosmos_qa", "wmt16_translate_deen"] * 2)


def test_mapping_applies_to_csv_and_folders_and_keeps_split_column(tmp_path):
    import pandas as pd

    rows = [{"q": f"q{i}", "a": f"a{i}", "kind": "k", "split": "test" if i == 0 else "train"} for i in range(3)]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    opts = SourceOptions(instruction_column="q", response_column="a", task_column="kind")
    assert load_pool(str(tmp_path), 0, 0, opts) == [
        {"instruction": r["q"], "response": r["a"], "task": "k", "split": r["split"]} for r in rows
    ]


def test_missing_columns_name_the_setting_and_the_files_columns(tmp_path):
    path = _write_dolly(tmp_path)
    with pytest.raises(DatasetError) as err:
        load_pool(str(path), 0, 0)  # default columns: there is no 'task' column in Dolly
    msg = str(err.value)
    assert "missing required column(s) task (named by task_column)" in msg and "dolly.jsonl" in msg
    assert "instruction, context, response, category" in msg  # the file's columns
    with pytest.raises(DatasetError) as err:
        load_pool(str(path), 0, 0, SourceOptions(task_column="category", input_column="passage"))
    assert "column(s) passage (named by input_column)" in str(err.value)
    with pytest.raises(DatasetError) as err:
        load_pool(str(path), 0, 0, SourceOptions(instruction_column="prompt", response_column="answer",
                                                 task_column="category"))
    msg = str(err.value)
    assert "column(s) prompt, answer (named by instruction_column, response_column)" in msg


def test_options_from_run_config_reach_the_partitions(tmp_path):
    from fedrouter.config import RunConfig
    from fedrouter.data.federated import all_client_data

    path = _write_dolly(tmp_path)
    cfg = RunConfig().replace(dataset_name=str(path), task_column="category", input_column="context",
                              dataset_sample=0, num_clients=4, sample_clients=4, split_strategy="single",
                              max_eval_size=0)
    assert SourceOptions.from_config(cfg) == DOLLY
    clients = all_client_data(cfg)
    seen = {r["instruction"] for c in clients for r in [*c.train, *c.test]}
    assert seen == {_joined(r) for r in _dolly_rows()}


# ------------------------------------------------------------------------------------------ hub ids


def test_is_hub_id(tmp_path):
    assert is_hub_id("databricks/databricks-dolly-15k") and is_hub_id("squad") and is_hub_id("org/name.v2")
    assert not is_hub_id("builtin") and not is_hub_id("multitask")
    assert not is_hub_id("data.jsonl") and not is_hub_id("path/to/multitask") and not is_hub_id("./x")
    assert not is_hub_id("/abs/dir") and not is_hub_id("../up") and not is_hub_id("org/data.parquet")
    (tmp_path / "org").mkdir()
    assert not is_hub_id(str(tmp_path / "org"))


def test_hub_dataset_loads_through_load_dataset_and_the_mapping(monkeypatch):
    import datasets

    from fedrouter.data.sources import hf

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(_flan_rows() if path == "org/flan" else _dolly_rows())

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(hf, "hub_mode", lambda: (False, ""))
    opts = SourceOptions(task_column="category", input_column="context", dataset_split="train[:50%]")
    pool = load_pool("databricks/databricks-dolly-15k", 0, 0, opts)
    assert calls == [("databricks/databricks-dolly-15k", None, "train[:50%]")]
    assert pool == [{"instruction": _joined(r), "response": r["response"], "task": r["category"]}
                    for r in _dolly_rows()]
    pool = load_pool("org/flan", 0, 0, SourceOptions(**{**FLAN.__dict__, "dataset_config": "cot"}))
    assert calls[-1] == ("org/flan", "cot", "train")
    assert [r["instruction"] for r in pool] == [r["inputs"] for r in _flan_rows()]


def test_hub_dataset_offline_without_cache_is_a_clear_error(monkeypatch, tmp_path):
    import datasets.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    with pytest.raises(DatasetError) as err:
        load_pool("someorg/not-cached-anywhere", 0, 0)
    msg = str(err.value)
    assert "not an existing file or folder" in msg and "offline mode is on" in msg and "local file" in msg


def test_hub_dataset_script_error_names_the_cause_not_offline(monkeypatch):
    import datasets

    def script_dataset(*args, **kwargs):
        raise RuntimeError("Dataset scripts are no longer supported, but found samsum.py")

    monkeypatch.setattr(datasets, "load_dataset", script_dataset)
    with pytest.raises(DatasetError) as err:
        load_pool("samsum", 0, 0)  # offline mode is on in the tests: the message must still name the script
    msg = str(err.value)
    assert "samsum is a loading-script dataset, which datasets>=4 cannot load" in msg
    assert "fedrouter loads Samsung/samsum@" in msg and "offline" not in msg


# ------------------------------------------------------------------------------------------ validation


def _cfg(**changes):
    from fedrouter.config import RunConfig

    return RunConfig().replace(**changes)


def test_source_problems_hub_id_offline_and_not_cached(monkeypatch, tmp_path):
    import datasets.config

    from fedrouter.validation import source_problems

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    found = source_problems(_cfg(dataset_name="someorg/not-cached-anywhere"), partition=False)
    assert len(found) == 1
    assert "not in the local datasets cache" in found[0] and "no such file" not in found[0]


def test_source_problems_hub_id_online_is_left_to_load_time(monkeypatch):
    import datasets.config

    from fedrouter.validation import source_problems

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert source_problems(_cfg(dataset_name="databricks/databricks-dolly-15k"), partition=False) == []


def test_source_problems_missing_path_and_empty_columns(tmp_path):
    from fedrouter.validation import source_problems

    found = source_problems(_cfg(dataset_name=str(tmp_path / "missing.jsonl")), partition=False)
    assert len(found) == 1 and "no such file or folder" in found[0] and "hub dataset id" in found[0]
    path = _write_dolly(tmp_path)
    found = source_problems(_cfg(dataset_name=str(path), task_column=" "), partition=False)
    assert found == ["task_column is empty: it must name a column of the data"]
    # With the data partitioned, a wrong mapping is reported with the setting's name.
    found = source_problems(_cfg(dataset_name=str(path), num_clients=4, sample_clients=4))
    assert len(found) == 1 and "column(s) task (named by task_column)" in found[0]
