"""FedProx: the proximal term pulls a client's adapter toward the one it received (larger mu, smaller
distance, measured), mu = 0 is FedIT exactly, and the whole method runs through the launcher's entry point."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import RecordDict

from conftest import assert_clients_sent_only_what_is_allowed, tiny_settings
from fedrouter.algorithms.base import ClientRuntime, from_record, get_algorithm, to_record
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.config import ConfigError, RunConfig
from fedrouter.data.federated import client_data
from fedrouter.data.prompt import encode_example
from fedrouter.models.backbone import get_backbone
from fedrouter.runtime.simulate import simulate


def _received(cfg) -> dict[str, np.ndarray]:
    """A trained-looking adapter (B != 0), as a round-2 message carries."""
    rng = np.random.default_rng(7)
    return {k: v + rng.normal(scale=0.05, size=v.shape).astype(np.float32)
            for k, v in get_backbone(cfg).init_state(cfg.seed).items()}


def _train(cfg, fed_alg: str, received: dict[str, np.ndarray], store) -> dict[str, np.ndarray]:
    cfg = cfg.replace(fed_alg=fed_alg) if fed_alg != cfg.fed_alg else cfg
    backbone = get_backbone(cfg)
    data = client_data(cfg, 0)
    examples = [encode_example(backbone.tokenizer, r["instruction"], r["response"], cfg.seq_length) for r in data.train]
    rt = ClientRuntime(cfg, 0, 2, data, backbone, ClientStore(store, 0), examples)
    content = RecordDict({"adapter": to_record(received)})
    return from_record(get_algorithm(cfg.fed_alg).client().train(rt, content)["adapter"])


def _distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a)))


def test_larger_mu_keeps_the_adapter_closer_to_the_received_one(tmp_path):
    # Prepare: the same client, data, seed and received adapter; a large learning rate so the
    # proximal pull is visible within a few steps
    base = tiny_settings(tmp_path, fed_alg="fedprox", max_steps=6, lr=2e-2)
    received = _received(base)
    # Execute
    distances = {mu: _distance(_train(base.replace(mu=mu), "fedprox", received, tmp_path / f"s{mu}"), received)
                 for mu in (0.0, 1.0, 10.0, 100.0)}
    # Assert: strictly decreasing in mu, and training still moved the adapter
    values = [distances[mu] for mu in sorted(distances)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), distances
    assert values[-1] > 0


def test_mu_zero_is_fedit_exactly(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedprox", mu=0.0, max_steps=4)
    received = _received(cfg)
    prox = _train(cfg, "fedprox", received, tmp_path / "p")
    fedit = _train(cfg, "fedit", received, tmp_path / "i")
    assert prox.keys() == fedit.keys()
    for k in prox:
        np.testing.assert_array_equal(prox[k], fedit[k])


def test_mu_is_checked_by_its_own_settings_class():
    with pytest.raises(ConfigError, match="mu=-0.5 must be >= 0"):
        from fedrouter.validation import validate

        validate(RunConfig.from_mapping({"fed_alg": "fedprox", "mu": -0.5}), sources=False)
    with pytest.raises(ConfigError, match="mu='0.1' is a setting of fed_alg=fedprox"):
        RunConfig.from_mapping({"fed_alg": "fedit", "mu": "0.1"})


def test_fedprox_runs_end_to_end_and_sends_what_fedit_sends(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="fedprox", mu=0.1, num_rounds=2, eval_round="0,2", max_steps=3)
    results = simulate(cfg)
    assert assert_clients_sent_only_what_is_allowed(sent, cfg) == 16  # 4 clients x (2 train + 2 evaluate)
    zero_shot = [r for r in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if '"round": 0' in r]
    assert zero_shot and results["final"]["rouge1"] > 0
    assert (cfg.run_dir / "adapters" / "round_2" / "global").is_dir()
