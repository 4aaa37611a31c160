"""Differential privacy in whole runs: what every method's clients release is clipped, the reported epsilon is
the accountant's for the run's releases, a budget stops a run, and settings that would leak are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.algorithms.base import from_record, get_algorithm
from fedrouter.config import ConfigError
from fedrouter.models.backbone import get_backbone
from fedrouter.privacy.accounting import Plan, planned_epsilon
from fedrouter.privacy.server import DP_INIT, noise_multiplier
from fedrouter.runtime.server_app import sample_clients
from fedrouter.runtime.simulate import simulate
from fedrouter.validation import validate

FAST = dict(num_rounds=2, eval_round="2", max_steps=2, max_new_tokens=4, max_eval_size=4)
PER_METHOD = {"fedrouter": dict(router_model="centroid", n_clusters="1", global_n_clusters="2"),
              "fedcluster": dict(sim_round=1, n_groups="2")}
# The default suite runs the methods with their own release paths (one adapter, per-group noise and the grouping
# release, per-cluster noise and the centroid release, nothing); the FedIT-shaped ones are slow-marked.
METHODS = [pytest.param(m, marks=pytest.mark.slow if m in ("fedprox", "fedsa", "feddpa") else ())
           for m in ("fedit", "fedprox", "fedsa", "feddpa", "fedcluster", "fedrouter", "local")]


def _update_norms(sent, cfg):
    """Per training reply: the joint L2 norm of everything it sent against what it received (or the init)."""
    init = get_backbone(cfg).init_state(cfg.seed)
    norms = []
    for kind, _, contents, replies in sent:
        if kind != "train":
            continue
        for cid, content in replies.items():
            if not [n for n in content.array_records if n != DP_INIT]:
                continue
            total = 0.0
            for name, record in content.array_records.items():
                if name == DP_INIT:
                    continue
                got = from_record(record)
                msg = contents[cid]
                start = from_record(msg[name]) if name in msg.array_records else init
                total += sum(float(np.sum((got[k].astype(np.float64) - start[k]) ** 2)) for k in got)
            norms.append(np.sqrt(total))
    return norms


@pytest.mark.parametrize("method", METHODS)
def test_every_method_releases_clipped_updates_and_reports_the_accountants_epsilon(tmp_path, sent, method):
    cfg = tiny_settings(tmp_path, fed_alg=method, dp="central", dp_clip=0.05, dp_noise_multiplier=0.5,
                        **FAST, **PER_METHOD.get(method, {}))
    results = simulate(cfg)
    norms = _update_norms(sent, cfg)
    server = get_algorithm(method).server
    if server.SENDS_UPDATES:
        assert norms and max(norms) <= 0.05 * (1 + 1e-4)
        assert min(norms) > 0.0
    else:
        assert not norms  # Local: nothing trained leaves a client
    plan = Plan(rounds=2 if server.SENDS_UPDATES else 0, individual=server.individual_releases(cfg))
    want = planned_epsilon(cfg, 0.5, plan)
    assert results["privacy"]["epsilon"] == pytest.approx(want, rel=1e-9)
    assert (want > 0) == server.SENDS_UPDATES
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    eps = [r["privacy"]["epsilon"] for r in rows if r["round"] >= 1]
    assert eps == sorted(eps) and eps[-1] == pytest.approx(want, rel=1e-9)
    assert "epsilon" in (cfg.run_dir / "log.txt").read_text()


def test_local_dp_noises_each_update_on_the_client(tmp_path, sent):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", dp="local", dp_clip=0.05, dp_noise_multiplier=1.0, **FAST)
    simulate(cfg)
    norms = _update_norms(sent, cfg)
    # a clipped update plus noise of std sigma x C on every one of its many coordinates is far longer than C
    n = sum(v.size for v in get_backbone(cfg).init_state(cfg.seed).values())
    assert min(norms) > 0.5 * 0.05 * np.sqrt(n)


def test_a_budget_stops_training_before_it_is_exceeded(tmp_path):
    base = dict(fed_alg="fedit", dp="central", dp_noise_multiplier=1.0, num_rounds=3, eval_round="3", max_steps=2,
                max_new_tokens=4, max_eval_size=4)
    probe = tiny_settings(tmp_path, **base)
    one, two = (planned_epsilon(probe, 1.0, Plan(rounds=r)) for r in (1, 2))
    cfg = tiny_settings(tmp_path, **base, dp_target_epsilon=(one + two) / 2, dp_budget="stop")
    results = simulate(cfg)
    assert results["final_round"] == 1 and results["privacy"]["stopped"]
    assert results["privacy"]["epsilon"] == pytest.approx(one) and results["final"]  # round 1 was evaluated
    assert "privacy budget" in (cfg.run_dir / "log.txt").read_text()


def test_calibrated_noise_spends_at_most_the_target():
    cfg = tiny_settings("/tmp", fed_alg="fedrouter", dp="central", num_clients=200, sample_clients=20, num_rounds=10,
                        router_model="centroid", dp_target_epsilon=3.0)
    sigma = noise_multiplier(cfg)
    assert planned_epsilon(cfg, sigma, Plan(rounds=10, individual=1)) <= 3.0 < planned_epsilon(cfg, sigma * 0.99, Plan(10, 1))


def test_poisson_sampling_draws_each_client_independently():
    cfg = tiny_settings("/tmp", num_clients=200, sample_clients=20, dp="central", dp_sampling="poisson")
    sizes = [len(sample_clients(cfg, r)) for r in range(1, 201)]
    assert len(set(sizes)) > 5 and abs(np.mean(sizes) - 20) < 1.5
    fixed = tiny_settings("/tmp", num_clients=200, sample_clients=20, dp="central")
    assert {len(sample_clients(fixed, r)) for r in range(1, 20)} == {20}


@pytest.mark.parametrize("settings,named", [
    (dict(dp="on"), "dp='on' is not known; allowed: off, central, local"),
    (dict(dp="central", dp_clip=0), "dp_clip=0.0 must be"),
    (dict(dp="central", dp_sampling="shuffle"), "dp_sampling='shuffle' is not known"),
    (dict(dp="central", fed_alg="fedrouter"), "router_model='lda' sends per-client second moments"),
    (dict(dp="central", fed_alg="fedrouter", router_model="centroid", router_accept=0.9), "router_accept=0.9"),
    (dict(dp="central", fed_alg="fedrouter", router_model="centroid", n_clusters="auto"), "n_clusters=auto"),
])
def test_settings_that_would_leak_or_make_no_sense_are_refused_by_name(tmp_path, settings, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        validate(tiny_settings(tmp_path, **settings), sources=False)
