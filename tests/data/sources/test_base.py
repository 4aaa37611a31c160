"""The DataSource interface and its registry: which source takes a dataset_name, what messages list, a source
registered by a test running through the data pipeline, and the options' defaults (RunConfig's)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fedrouter.config import RunConfig
from fedrouter.data.sources import (
    OWN_COLUMNS,
    REQUIRED_COLUMNS,
    DatasetError,
    DataSource,
    SourceOptions,
    allowed,
    is_hub_id,
    load_pool,
    register,
    registered,
    source_for,
    unregister,
)


def test_the_built_in_sources_in_message_and_claim_order(tmp_path):
    assert [s.name for s in registered()] == ["builtin", "multitask", "local", "hub"]
    assert source_for("builtin").name == "builtin" and source_for("multitask").name == "multitask"
    assert source_for("databricks/databricks-dolly-15k").name == "hub"
    assert source_for(str(tmp_path)).name == "local" and source_for("data.jsonl").name == "local"
    assert source_for("org/data.parquet").name == "local"  # a data-file suffix is a path, never a hub id
    assert source_for(" builtin").name == "local"  # validation passes names as given; load_pool strips them


def test_messages_list_the_registered_sources_as_before():
    assert allowed("brief") == "'builtin', 'multitask', a path to a file or folder, or a hub dataset id"
    assert allowed("full") == (
        "'builtin', 'multitask', an existing file (.jsonl, .json, .csv, .parquet) or folder of such files "
        "(e.g. path/to/multitask), or a Hugging Face hub dataset id (name or org/name)")
    assert allowed("check") == (
        "builtin, multitask, a path to JSONL/CSV/parquet data (columns named by instruction_column/"
        "response_column/task_column), or a Hugging Face hub dataset id (name or org/name)")


def test_a_registered_source_runs_through_the_data_pipeline(toy_source, tmp_path):
    from fedrouter.data.federated import all_client_data
    from fedrouter.runtime.simulate import write_data_record
    from fedrouter.validation import source_problems

    assert source_for("toy:3") is toy_source
    cfg = RunConfig().replace(dataset_name="toy:3", dataset_sample=0, num_clients=3, sample_clients=3,
                              split_strategy="single", max_eval_size=0, seed=1)
    expected = {(f"toy question {i} of task {t}", f"toy{t}") for t in range(3) for i in range(12)}
    clients = all_client_data(cfg)
    assert {(r["instruction"], r["task"]) for c in clients for r in [*c.train, *c.test]} == expected
    assert [sorted({r["task"] for r in c.train}) for c in clients] == [["toy0"], ["toy1"], ["toy2"]]
    assert source_problems(cfg) == []
    write_data_record(cfg, tmp_path / "data.json")
    data = json.loads((tmp_path / "data.json").read_text())
    assert data["tasks"] == ["toy0", "toy1", "toy2"] and data["toy"] == "generated in memory"
    assert source_problems(cfg.replace(dataset_name="toy:many"), partition=False) == [
        "dataset_name='toy:many': toy:<tasks> takes a number of tasks"]


def test_a_registered_source_is_listed_in_the_dataset_name_errors(toy_source, tmp_path):
    from fedrouter.validation import source_problems

    with pytest.raises(DatasetError, match=r"dataset_name is empty: use .*a hub dataset id, or 'toy:<tasks>'$"):
        load_pool(" ", 0, 0)
    with pytest.raises(DatasetError, match=r"does not exist; dataset_name must be 'builtin', .*, or 'toy:<tasks>'$"):
        load_pool(str(tmp_path / "missing.jsonl"), 0, 0)
    (problem,) = source_problems(RunConfig().replace(dataset_name=str(tmp_path / "x.csv")), partition=False)
    assert problem.endswith("a Hugging Face hub dataset id (name or org/name), or toy:<tasks>")


def test_unregistered_source_is_gone(toy_source):
    unregister("toy")
    assert "toy" not in allowed("full") and source_for("toy:3").name == "local"
    register(toy_source)  # the fixture unregisters it again


def test_a_name_is_registered_once(toy_source):
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register(type(toy_source)())


def test_claim_order_puts_named_sources_before_hub_ids_and_paths(tmp_path, monkeypatch):
    class Named(DataSource):
        name = "tiny-set"  # shaped like a hub id: the hub would take it if asked first

    assert is_hub_id("tiny-set")
    register(Named())
    try:
        assert source_for("tiny-set").name == "tiny-set" and not is_hub_id("tiny-set")
        monkeypatch.chdir(tmp_path)
        (tmp_path / "tiny-set").mkdir()  # even an existing folder of that name: the named source asked first
        assert source_for("tiny-set").name == "tiny-set"
    finally:
        unregister("tiny-set")


def test_source_options_defaults_are_run_configs():
    defaults = RunConfig().to_dict()
    for f in dataclasses.fields(SourceOptions):
        assert f.name in defaults and f.default == defaults[f.name], f.name
    assert SourceOptions() == SourceOptions.from_config(RunConfig())
    assert SourceOptions.from_config(object()) == SourceOptions()  # absent settings keep the defaults
    assert (OWN_COLUMNS.instruction_column, OWN_COLUMNS.response_column, OWN_COLUMNS.task_column) == REQUIRED_COLUMNS
    assert OWN_COLUMNS.input_column == ""


def test_source_options_problems_name_each_empty_setting():
    assert SourceOptions().problems() == []
    assert SourceOptions(instruction_column=" ", task_column="", dataset_split="").problems() == [
        "instruction_column is empty: it must name a column of the data",
        "task_column is empty: it must name a column of the data",
        "dataset_split is empty: name the split to load, e.g. train"]
