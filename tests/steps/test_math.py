"""Hand-computed expectations for FedAvg, the metrics' bookkeeping and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from fedrouter.config import RunConfig
from fedrouter.metrics import ROUGE_KEYS, combine_clients, summarize_client
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


def test_client_then_mean_over_clients():
    # client A: two samples (qqp 1.0, webnlg 0.0) -> 0.5; client B: one sample (qqp 0.5) -> 0.5
    a = summarize_client({k: np.array([1.0, 0.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp", "webnlg"])
    b = summarize_client({k: np.array([0.5]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"])
    assert a["rouge1"] == pytest.approx(0.5) and a["n/qqp"] == 1
    out = combine_clients([a, b], ROUGE_KEYS)
    assert out["rouge1"] == pytest.approx(0.5)  # mean over clients, not over the 3 samples (0.5 too)
    assert out["rouge1/qqp"] == pytest.approx(0.75)  # mean of client scores on qqp: (1.0 + 0.5) / 2
    assert out["rouge1/webnlg"] == pytest.approx(0.0)
    assert out["num_clients"] == 2 and out["num_samples"] == 3
    # a client-mean differs from a pooled mean when clients have different sizes
    c = summarize_client({k: np.array([1.0, 1.0, 1.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"] * 3)
    d = summarize_client({k: np.array([0.0]) for k in ("rouge1", "rouge2", "rougeL")}, ["qqp"])
    assert combine_clients([c, d], ROUGE_KEYS)["rouge1"] == pytest.approx(0.5)


def test_cosine_lr_over_rounds():
    cfg = RunConfig(num_rounds=5, lr=5e-4, lr_min=1e-5)
    assert cfg.lr_at(1) == pytest.approx(5e-4)
    assert cfg.lr_at(5) == pytest.approx(1e-5)
    assert cfg.lr_at(3) == pytest.approx((5e-4 + 1e-5) / 2)


def test_seen_and_unseen_scores_are_per_client_means_then_means_over_clients():
    # Prepare: client A has 2 seen (qqp) and 2 unseen (samsum) samples, client B only seen ones
    a = {k: np.array([1.0, 0.5, 0.2, 0.0]) for k in ROUGE_KEYS}
    b = {k: np.array([0.6, 0.4]) for k in ROUGE_KEYS}
    # Execute
    ma = summarize_client(a, ["qqp", "qqp", "samsum", "samsum"], unseen=("samsum",))
    mb = summarize_client(b, ["gigaword", "gigaword"], unseen=("samsum",))
    both = combine_clients([ma, mb], ROUGE_KEYS)
    # Assert: per client, then the mean over the clients that have such samples
    assert (ma["rouge1/seen"], ma["rouge1/unseen"], ma["n/unseen"]) == (0.75, 0.1, 2.0)
    assert "rouge1/unseen" not in mb and mb["rouge1/seen"] == 0.5
    assert both["rouge1/seen"] == (0.75 + 0.5) / 2 and both["rouge1/unseen"] == 0.1
    # without unseen tasks nothing is added
    assert "rouge1/seen" not in summarize_client(b, ["gigaword", "gigaword"])
