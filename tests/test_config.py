"""Settings: pyproject defaults match the code, parsing, and validation messages that name the setting."""

from __future__ import annotations

import dataclasses

import pytest
import tomllib

from conftest import REPO
from fedrouter.config import ConfigError, RunConfig, help_table
from fedrouter.validation import validate


def test_pyproject_app_config_equals_code_defaults():
    app_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    assert app_cfg == defaults


def test_readme_settings_table_matches_the_code():
    """The README's settings table is help_table()'s output: defaults and meanings cannot drift."""
    assert help_table() in (REPO / "README.md").read_text()


def test_parsing_strings_and_unknown_keys():
    cfg = RunConfig.from_mapping({"num_rounds": "3", "load_in_4bit": "true", "lr": "1e-3", "eval-round": "1,3"})
    assert cfg.num_rounds == 3 and cfg.load_in_4bit is True and cfg.lr == 1e-3 and cfg.eval_rounds == (1, 3)
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig.from_mapping({"num_round": 3})
    with pytest.raises(ConfigError, match="num_rounds='x': expected int"):
        RunConfig.from_mapping({"num_rounds": "x"})


def test_evaluation_mode_maps_to_router_and_test_distribution():
    assert (RunConfig(evaluation_mode="global").resolved_router, RunConfig(evaluation_mode="global").resolved_test_distribution) == ("global", "all")
    cfg = RunConfig(evaluation_mode="data_local_eval_global")
    assert (cfg.resolved_router, cfg.resolved_test_distribution) == ("global", "same")
    cfg = RunConfig(evaluation_mode="data_global_eval_local")
    assert (cfg.resolved_router, cfg.resolved_test_distribution) == ("local", "all")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fed_alg": "fedavgx"}, "fed_alg='fedavgx' is not known; allowed: "),
        ({"split_strategy": "triple"}, "split_strategy='triple' is not known"),
        ({"evaluation_mode": "both"}, "evaluation_mode='both' is not known"),
        ({"n_clusters": "0"}, "n_clusters=0 must be >= 1"),
        ({"fed_alg": "fedrouter", "global_n_clusters": "40"}, "global_n_clusters=40 is larger than the 8 local centroids"),
        ({"fed_alg": "fedcluster", "global_n_clusters": "9"}, "global_n_clusters=9 groups is more than num_clients=8"),
        ({"sample_clients": 9}, "sample_clients=9 must be between 1 and num_clients=8"),
        ({"num_clients": 6}, "num_clients=6 must be a multiple of 4 for split_strategy=single"),
        ({"eval_round": "5,30"}, "eval_round='5,30' has rounds [30] outside 0..num_rounds=20"),
        ({"lora_r": 0}, "lora_r=0 must be > 0"),
        ({"train_split": 1.0}, "train_split=1.0 must be in (0, 1)"),
        ({"dataset_name": "/no/such/data"}, "dataset_name='/no/such/data': no such file or folder"),
        ({"model_name_or_path": "org/not-cached-model"}, "Use a local path, the built-in model"),
        ({"model_name_or_path": "builtin:huge"}, "the built-in models are: builtin:tiny"),
    ],
)
def test_validation_names_setting_value_and_allowed(changes, message):
    with pytest.raises(ConfigError) as err:
        validate(RunConfig(**changes))
    assert message in str(err.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate(RunConfig(lora_r=0, train_split=2.0))
    assert "lora_r" in str(err.value) and "train_split" in str(err.value)


def test_defaults_are_valid():
    validate(RunConfig())
