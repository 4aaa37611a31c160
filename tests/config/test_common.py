"""fedrouter.config.common: each common section checks its own values (one message per bad value,
naming the setting and what is allowed), and cross_checks relates settings of two sections."""

from __future__ import annotations

import pytest

from fedrouter.config import RunConfig
from fedrouter.config.common import (
    DataSettings,
    EvaluationSettings,
    LoraSettings,
    ModelSettings,
    RunSettings,
    TrainingSettings,
    cross_checks,
)
from fedrouter.config.values import FaultList, RoundList

RUN = RunConfig()


@pytest.mark.parametrize("section", [DataSettings, ModelSettings, LoraSettings, TrainingSettings,
                                     EvaluationSettings, RunSettings])
def test_the_defaults_pass_their_sections_check(section):
    assert section().check(RUN) == []


@pytest.mark.parametrize("section, changes, message", [
    (DataSettings, {"split_strategy": "triple"}, "split_strategy='triple' is not known; allowed: single, dual, multi"),
    (DataSettings, {"split_strategy": "multitask_iid"}, None),  # an alias of a strategy
    (DataSettings, {"test_distribution": "some"}, "test_distribution='some' is not known; allowed: same, all"),
    (DataSettings, {"tasks_per_client": 0}, "tasks_per_client=0 must be >= 1"),
    (DataSettings, {"dirichlet_alpha": float("inf")}, "dirichlet_alpha=inf must be a finite number > 0"),
    (DataSettings, {"dirichlet_min_records": 0}, "dirichlet_min_records=0 must be >= 1"),
    (DataSettings, {"num_clients": 0, "sample_clients": 0}, "num_clients=0 must be >= 1"),
    (DataSettings, {"sample_clients": 0}, "sample_clients=0 must be between 1 and num_clients=8"),
    (DataSettings, {"train_split": 0.0}, "train_split=0.0 must be in (0, 1)"),
    (DataSettings, {"dataset_sample": -1}, "dataset_sample=-1 must be >= 0 (0 = all)"),
    (DataSettings, {"max_data_per_client": -1}, "max_data_per_client=-1 must be >= 0 (0 = no cap)"),
    (DataSettings, {"max_eval_size": -1}, "max_eval_size=-1 must be >= 0 (0 = no cap)"),
    (ModelSettings, {"dtype": "float8"}, "dtype='float8' is not known; allowed: auto, float32, bfloat16, float16"),
    (ModelSettings, {"load_in_4bit": True, "load_in_8bit": True}, "load_in_4bit and load_in_8bit cannot both be true"),
    (LoraSettings, {"lora_alpha": 0}, "lora_alpha=0 must be > 0"),
    (LoraSettings, {"lora_dropout": 1.0}, "lora_dropout=1.0 must be in [0, 1)"),
    (TrainingSettings, {"num_rounds": 0}, "num_rounds=0 must be >= 1"),
    (TrainingSettings, {"batch_size": 0}, "batch_size=0 must be >= 1"),
    (TrainingSettings, {"gradient_accumulation_steps": 3}, "gradient_accumulation_steps=3 must be >= 1 and divide batch_size=16"),
    (TrainingSettings, {"max_steps": -1}, "max_steps=-1 must be >= 0"),
    (TrainingSettings, {"max_steps": 0, "num_train_epochs": 0}, "num_train_epochs=0 must be >= 1 when max_steps=0"),
    (TrainingSettings, {"seq_length": 8}, "seq_length=8 must be >= 16"),
    (TrainingSettings, {"lr_min": 1.0}, "lr=0.002 must be > 0 and lr_min=1.0 in [0, lr]"),
    (EvaluationSettings, {"generation_batching": "packed"}, "generation_batching='packed' is not known; allowed: auto, grouped, mixed"),
    (EvaluationSettings, {"batch_size_eval": 0}, "batch_size_eval=0 must be >= 1"),
    (EvaluationSettings, {"max_new_tokens": 0}, "max_new_tokens=0 must be >= 1"),
    (RunSettings, {"max_failure_rate": 1.5}, "max_failure_rate=1.5 must be in [0, 1]"),
    (RunSettings, {"reply_timeout": -1.0}, "reply_timeout=-1.0 must be >= 0 seconds (0 = no limit)"),
    (RunSettings, {"inject_fault": FaultList("0:1:hang")}, "inject_fault='0:1:hang' uses hang, which needs reply_timeout > 0"),
    (RunSettings, {"inject_fault": FaultList("0:1:hang"), "reply_timeout": 5.0}, None),
    (RunSettings, {"client_resources_cpus": 0}, "client_resources_cpus=0 must be >= 1"),
    (RunSettings, {"client_resources_gpus": -0.5}, "client_resources_gpus=-0.5 must be >= 0"),
])
def test_each_section_names_its_bad_value(section, changes, message):
    found = section(**changes).check(RUN)
    if message is None:
        assert found == []
    else:
        assert found and found[0].startswith(message), found


def test_every_bad_value_of_a_section_is_reported():
    found = LoraSettings(lora_r=0, lora_alpha=0, lora_dropout=2.0).check(RUN)
    assert [m.split("=")[0] for m in found] == ["lora_r", "lora_alpha", "lora_dropout"]


def test_cross_checks_keep_evaluation_rounds_inside_the_run():
    assert cross_checks(RunConfig(num_rounds=5, eval_round=RoundList("0,5"))) == []
    assert cross_checks(RunConfig(num_rounds=5, eval_round=RoundList("0,6,9"))) == [
        "eval_round='0,6,9' has rounds [6, 9] outside 0..num_rounds=5 (0 = the base model before training)"]
