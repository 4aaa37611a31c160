"""fedrouter.steps.aggregate: hand-computed expectations for FedAvg, and the sanity checks over adapter arrays."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_fedavg_refuses_nothing_negative_weights_and_mismatched_keys():
    a = {"x.lora_A.weight": np.ones(2, np.float32)}
    with pytest.raises(ValueError, match="at least one state"):
        weighted_average([], [])
    with pytest.raises(ValueError, match="non-negative"):
        weighted_average([a, a], [2, -1])
    with pytest.raises(ValueError, match="different keys"):
        weighted_average([a, {"y.lora_A.weight": np.ones(2, np.float32)}], [1, 1])


def test_fedavg_of_one_state_is_that_state_and_accumulates_in_float64():
    big = {"w": np.array([1e8, 1.0], np.float32)}
    np.testing.assert_array_equal(weighted_average([big], [5])["w"], big["w"])
    # float32 accumulation would lose the small entry next to the large ones
    avg = weighted_average([{"w": np.array([16777216.0], np.float32)}, {"w": np.array([1.0], np.float32)}], [1, 1])
    assert avg["w"][0] == np.float32((16777216.0 + 1.0) / 2)


def test_select_takes_one_half_or_everything():
    state = {"m.q.lora_A.weight": np.zeros(1), "m.q.lora_B.weight": np.ones(1)}
    assert list(select(state, "lora_B")) == ["m.q.lora_B.weight"]
    assert select(state, "all") == state and select(state, "all") is not state
    assert non_finite_keys({"a": np.array([np.inf]), "b": np.array([-np.inf]), "c": np.zeros(1)}) == ["a", "b"]
