"""FedIT's server half on hand-built client replies: one adapter, the sample-weighted FedAvg of A and B."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.algorithms.base import from_record, get_algorithm, reply

Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def lora(a: float, b: float) -> dict[str, np.ndarray]:
    """A rank-2 LoRA state of one 3 -> 4 module: A filled with `a`, B with `b`."""
    return {Q_A: np.full((2, 3), a, np.float32), Q_B: np.full((4, 2), b, np.float32)}


def train_reply(a: float, b: float, num_samples: float):
    return reply({"loss": 1.0, "num_samples": num_samples}, {"adapter": lora(a, b)})


def fedit_server(tmp_path):
    return get_algorithm("fedit").server(tiny_settings(tmp_path, fed_alg="fedit"))


def assert_state_equal(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_configure_train_before_any_aggregation_sends_no_adapter(tmp_path):
    # Prepare
    server = fedit_server(tmp_path)

    # Execute
    messages = server.configure_train(1, [0, 1, 2, 3])

    # Assert: an empty message means "start from the shared seeded initialisation"
    assert sorted(messages) == [0, 1, 2, 3]
    assert all(len(m.array_records) == 0 for m in messages.values())
    assert server.adapters() == {}


def test_aggregate_train_is_the_sample_weighted_average_of_a_and_b(tmp_path):
    # Prepare
    server = fedit_server(tmp_path)
    replies = {0: train_reply(a=1.0, b=2.0, num_samples=1), 1: train_reply(a=5.0, b=6.0, num_samples=3)}

    # Execute
    metrics = server.aggregate_train(1, replies)

    # Assert: A = (1 * 1 + 3 * 5) / 4 = 4, B = (1 * 2 + 3 * 6) / 4 = 5
    assert metrics == {}
    assert list(server.adapters()) == ["global"]
    assert_state_equal(server.adapters()["global"], lora(a=4.0, b=5.0))


def test_configure_train_and_evaluate_send_the_aggregate_to_everyone(tmp_path):
    # Prepare: clients 0 and 1 trained in round 1; 2 and 3 did not
    server = fedit_server(tmp_path)
    server.aggregate_train(1, {0: train_reply(1.0, 2.0, 1), 1: train_reply(5.0, 6.0, 3)})

    # Execute
    train = server.configure_train(2, [0, 1, 2, 3])
    evaluate = server.configure_evaluate(2, [3, 0])

    # Assert
    assert sorted(train) == [0, 1, 2, 3] and sorted(evaluate) == [0, 3]
    for message in [*train.values(), *evaluate.values()]:
        assert list(message.array_records) == ["adapter"]
        assert_state_equal(from_record(message["adapter"]), lora(a=4.0, b=5.0))


def test_equal_weights_give_the_plain_mean(tmp_path):
    # Prepare
    server = fedit_server(tmp_path)
    replies = {c: train_reply(a=float(c), b=-2.0 * c, num_samples=7) for c in range(4)}

    # Execute
    server.aggregate_train(3, replies)

    # Assert: A = mean(0, 1, 2, 3) = 1.5, B = mean(0, -2, -4, -6) = -3
    assert_state_equal(server.adapters()["global"], lora(a=1.5, b=-3.0))


def test_aggregate_evaluate_averages_clients_equally_and_sums_their_samples(tmp_path):
    # Prepare
    server = fedit_server(tmp_path)
    replies = {0: reply({"rouge1": 0.25, "rouge2": 0.125, "rougeL": 0.25, "n": 2.0}),
               1: reply({"rouge1": 0.75, "rouge2": 0.375, "rougeL": 0.5, "n": 6.0})}

    # Execute
    metrics = server.aggregate_evaluate(2, replies)

    # Assert: the mean over clients (not weighted by their test samples)
    assert metrics["rouge1"] == pytest.approx(0.5)
    assert metrics["rouge2"] == pytest.approx(0.25)
    assert metrics["rougeL"] == pytest.approx(0.375)
    assert metrics["num_clients"] == 2.0 and metrics["num_samples"] == 8.0


def test_state_dict_roundtrip_resumes_with_the_same_adapter(tmp_path):
    # Prepare
    server = fedit_server(tmp_path)
    server.aggregate_train(1, {0: train_reply(1.0, 2.0, 1), 1: train_reply(5.0, 6.0, 3)})
    arrays, meta = server.state_dict()
    resumed = fedit_server(tmp_path)

    # Execute
    resumed.load_state_dict(dict(arrays), meta)

    # Assert
    assert_state_equal(from_record(resumed.configure_train(2, [1])[1]["adapter"]), lora(a=4.0, b=5.0))
    assert_state_equal(resumed.adapters()["global"], lora(a=4.0, b=5.0))


def test_state_dict_of_a_fresh_server_resumes_from_the_initialisation(tmp_path):
    # Prepare
    arrays, meta = fedit_server(tmp_path).state_dict()
    resumed = fedit_server(tmp_path)

    # Execute
    resumed.load_state_dict(dict(arrays), meta)

    # Assert
    assert arrays == {}
    assert len(resumed.configure_train(1, [0])[0].array_records) == 0
