"""Hand-computed expectations for FedAvg and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.config import RunConfig
from fedrouter.steps.aggregate import non_finite_keys, select, weighted_average


def test_fedavg_matches_hand_computed_weighted_mean():
    a = {"x.lora_A.weight": np.array([1.0, 2.0], np.float32), "x.lora_B.weight": np.array([[0.0]], np.float32)}
    b = {"x.lora_A.weight": np.array([3.0, 6.0], np.float32), "x.lora_B.weight": np.array([[4.0]], np.float32)}
    avg = weighted_average([a, b], [1, 3])  # weights 0.25 / 0.75
    np.testing.assert_allclose(avg["x.lora_A.weight"], [2.5, 5.0])
    np.testing.assert_allclose(avg["x.lora_B.weight"], [[3.0]])
    assert avg["x.lora_A.weight"].dtype == np.float32
    assert set(select(a, "lora_A")) == {"x.lora_A.weight"}
    with pytest.raises(ValueError):
        weighted_average([a, b], [0, 0])


def test_non_finite_detection():
    assert non_finite_keys({"a": np.array([1.0, np.nan]), "b": np.ones(2)}) == ["a"]


def test_cosine_lr_over_rounds():
    cfg = RunConfig(num_rounds=5, lr=5e-4, lr_min=1e-5)
    assert cfg.lr_at(1) == pytest.approx(5e-4)
    assert cfg.lr_at(5) == pytest.approx(1e-5)
    assert cfg.lr_at(3) == pytest.approx((5e-4 + 1e-5) / 2)
