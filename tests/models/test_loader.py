"""fedrouter.models.loader, the parts that load nothing: the model spec a run's settings give, its dtype
on this machine, and whether a named model can be loaded offline (loading runs in tests/models/test_tiny.py
and every simulation)."""

from __future__ import annotations

import torch

from fedrouter.config import RunConfig
from fedrouter.models.loader import ModelSpec, model_available_offline, resolve_model_path


def test_the_spec_follows_the_settings_and_the_dtype_the_device():
    cfg = RunConfig(model_name_or_path="some/model", gguf_file="m.gguf", load_in_8bit=True, dtype="float16", gpu=False)
    spec = ModelSpec.from_config(cfg)
    assert spec == ModelSpec("some/model", "m.gguf", False, True, "float16", False)
    assert spec.device == torch.device("cpu") and spec.torch_dtype() == torch.float16
    assert ModelSpec("x", gpu=False).torch_dtype() == torch.float32  # auto on a CPU


def test_a_model_that_cannot_be_loaded_offline_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_available_offline("builtin:tiny") is None and model_available_offline(str(tmp_path)) is None
    problem = model_available_offline("org/not-cached-model-for-a-test")
    assert problem.startswith("model_name_or_path='org/not-cached-model-for-a-test' is neither a local folder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert model_available_offline("org/not-cached-model-for-a-test") is None  # online: the hub may have it


def test_a_name_that_is_not_built_in_is_passed_through():
    assert resolve_model_path("org/model") == "org/model" and resolve_model_path("/a/folder") == "/a/folder"
