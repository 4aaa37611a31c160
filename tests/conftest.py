"""Shared fixtures: offline environment, a private model cache, and tiny run settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "multitask"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One built-in model per test session (built on first use, ~1-2 min), reused by every test.
os.environ.setdefault("FEDROUTER_CACHE", str(REPO / ".cache" / "fedrouter"))


@pytest.fixture
def seed() -> int:
    return 1234


def tiny_settings(tmp_path: Path, **overrides):
    """A run small enough for a unit test: 4 clients, few steps, few test samples."""
    from fedrouter.config import RunConfig

    base = dict(num_clients=4, sample_clients=4, num_rounds=2, eval_round="2", max_steps=4, batch_size=8,
                dataset_sample=80, max_eval_size=8, max_new_tokens=12, output_dir=str(tmp_path), sim_alias="t")
    base.update(overrides)
    return RunConfig.from_mapping(base)
