"""fedrouter.validation: every problem of a run's settings found before any model or data loads, one
message per problem naming the setting, its value and what is allowed."""

from __future__ import annotations

import pytest

from fedrouter.algorithms.base import algorithms
from fedrouter.config import ConfigError, RunConfig
from fedrouter.validation import problems, source_problems, validate


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"split_strategy": "triple"}, "split_strategy='triple' is not known"),
        ({"test_distribution": "some"}, "test_distribution='some' is not known; allowed: same, all"),
        ({"n_clusters": "0"}, "n_clusters=0 must be >= 1"),
        ({"router": "nearest"}, "router='nearest' is not known; allowed: local, global"),
        ({"fed_alg": "fedrouter", "global_n_clusters": "40"}, "global_n_clusters=40 is larger than the 8 local centroids"),
        ({"fed_alg": "fedcluster", "n_groups": "9"}, "n_groups=9 groups is more than num_clients=8"),
        ({"fed_alg": "fedcluster", "sim_round": 30}, "sim_round=30 must be in 1..num_rounds=20"),
        ({"fed_alg": "fedcluster", "update_scope": "first"}, "update_scope='first' is not known; allowed: last, all"),
        ({"fed_alg": "feddpa", "mix_weight": 1.5}, "mix_weight=1.5 must be in [0, 1]"),
        ({"fed_alg": "fedprox", "mu": -1}, "mu=-1.0 must be >= 0"),
        ({"sample_clients": 9}, "sample_clients=9 must be between 1 and num_clients=8"),
        ({"split_strategy": "multi", "tasks_per_client": 5}, "tasks_per_client=5 needs at least 5 training tasks"),
        ({"eval_round": "5,30"}, "eval_round='5,30' has rounds [30] outside 0..num_rounds=20"),
        ({"lora_r": 0}, "lora_r=0 must be > 0"),
        ({"reply_timeout": -1}, "reply_timeout=-1.0 must be >= 0 seconds"),
        ({"inject_fault": "1:2:hang"}, "uses hang, which needs reply_timeout > 0"),
        ({"inject_fault": "1:2:freeze"}, "inject_fault='1:2:freeze' must be 'client:round[:nan|:hang]' entries"),
        ({"train_split": 1.0}, "train_split=1.0 must be in (0, 1)"),
        ({"dataset_name": "/no/such/data"}, "dataset_name='/no/such/data': no such file or folder"),
        ({"model_name_or_path": "org/not-cached-model"}, "Use a local path, the built-in model"),
        ({"model_name_or_path": "builtin:huge"}, "the built-in models are: builtin:tiny"),
    ],
)
def test_validation_names_setting_value_and_allowed(changes, message):
    with pytest.raises(ConfigError) as err:
        validate(RunConfig.from_mapping(changes))
    assert message in str(err.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate(RunConfig.from_mapping({"lora_r": 0, "train_split": 2.0}))
    assert "lora_r" in str(err.value) and "train_split" in str(err.value)


@pytest.mark.parametrize("name", [a.name for a in algorithms()])
def test_defaults_are_valid(name):
    validate(RunConfig.from_mapping({"fed_alg": name}))


def test_settings_alone_skip_the_data_and_the_model():
    cfg = RunConfig.from_mapping({"dataset_name": "/no/such/data", "model_name_or_path": "builtin:huge"})
    assert problems(cfg, sources=False) == []
    found = source_problems(cfg, partition=False)
    assert any("dataset_name='/no/such/data'" in p for p in found)
    assert any("the built-in models are: builtin:tiny" in p for p in found)


def test_an_unknown_metric_is_a_settings_problem():
    found = problems(RunConfig.from_mapping({"metrics": "rouge1,nosuchmetric"}), sources=False)
    assert len(found) == 1 and "nosuchmetric" in found[0]
