"""The Gaussian mechanisms and the accountant, on hand-built values: clipping bounds the norm, the noise has the
std it claims, the reported epsilon is the accountant library's own answer."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.privacy.accounting import Plan, calibrate, planned_epsilon
from fedrouter.privacy.mechanism import (
    centroid_sensitivity,
    clip_rows,
    clipped_updates,
    joint_norm,
    noisy_average,
    noisy_centroids,
)
from fedrouter.privacy.server import ServerPrivacy


def _states(rng, scale):
    return {"a": {"x": rng.normal(0, scale, (4, 3)).astype(np.float32), "y": rng.normal(0, scale, 5).astype(np.float32)},
            "b": {"x": rng.normal(0, scale, (2, 2)).astype(np.float32)}}


@pytest.mark.parametrize("scale", [0.01, 1.0, 10.0])
def test_a_released_update_is_clipped_jointly_over_every_array(scale):
    rng = np.random.default_rng(0)
    starts, trained = _states(rng, 1.0), _states(rng, 1.0)
    trained = {n: {k: starts[n][k] + scale * v for k, v in s.items()} for n, s in trained.items()}
    sent, norm = clipped_updates(starts, trained, clip=1.0)
    deltas = [sent[n][k].astype(np.float64) - starts[n][k] for n in sent for k in sent[n]]
    before = [trained[n][k].astype(np.float64) - starts[n][k] for n in sent for k in sent[n]]
    assert norm == pytest.approx(joint_norm(before))
    assert joint_norm(deltas) <= 1.0 + 1e-5
    if norm <= 1.0:  # below the bound: sent as trained
        assert all(np.allclose(sent[n][k], trained[n][k]) for n in sent for k in sent[n])
    else:  # above: one common scale factor (the update's direction is kept)
        ratios = np.concatenate([(d / b).ravel() for d, b in zip(deltas, before, strict=True)])
        assert np.allclose(ratios, 1.0 / norm, rtol=1e-3)


def test_noise_std_on_the_aggregate_is_noise_multiplier_times_clip():
    """DP-FedAvg's server noise: over many draws of a zero update, (new - ref) x denominator has std sigma x C."""
    cfg = tiny_settings("/tmp", dp="central", dp_clip=0.5, dp_noise_multiplier=1.7)
    priv = ServerPrivacy(cfg)
    ref = {"w": np.zeros(20000, dtype=np.float32)}
    out = priv.average(ref, [], expected=4.0, tag=0)
    draws = out["w"].astype(np.float64) * 4.0
    want = 1.7 * 0.5
    # the sample std of n normal draws is within 4 standard errors (want / sqrt(2n)) of the truth
    assert abs(draws.std() - want) < 4 * want / np.sqrt(2 * draws.size)
    assert abs(draws.mean()) < 4 * want / np.sqrt(draws.size)


def test_local_noise_and_a_fixed_denominator():
    rng = np.random.default_rng(1)
    zero = {"u": {"w": np.zeros(20000, dtype=np.float32)}}
    sent, _ = clipped_updates(zero, zero, clip=2.0, noise_std=0.3, rng=rng)
    assert abs(sent["u"]["w"].std() - 0.3) < 4 * 0.3 / np.sqrt(2 * 20000)
    # no noise: the denominator is the fixed one, not the number of states
    ref = {"w": np.zeros(3)}
    states = [{"w": np.ones(3)}, {"w": 3 * np.ones(3)}]
    out = noisy_average(ref, states, denominator=8.0, noise_std=0.0, rng=rng)
    assert np.allclose(out["w"], 0.5)


def test_centroid_release_noise_matches_its_sensitivity():
    rng = np.random.default_rng(2)
    emb = clip_rows(rng.normal(0, 5, (50, 8)), 1.0)
    assert np.linalg.norm(emb, axis=1).max() <= 1.0 + 1e-6
    centroids = np.zeros((3, 4000))
    noisy, shares = noisy_centroids(centroids, np.array([0.5, 0.25, 0.25]), clip=1.0, sigma=0.8, rng=rng)
    want = 0.8 * centroid_sensitivity(3, 1.0)
    assert want == pytest.approx(0.8 * np.sqrt(3 * 4 + 2))
    assert abs(noisy.std() - want) < 4 * want / np.sqrt(2 * noisy.size)
    assert shares.min() >= 0 and shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("sampling", ["fixed", "poisson", "none"])
def test_epsilon_equals_the_accountant_library_for_the_same_events(sampling):
    """Our plan through Flower's RdpAccountant against dp-accounting called directly."""
    from dp_accounting import dp_event, privacy_accountant
    from dp_accounting.rdp import RdpAccountant

    cfg = tiny_settings("/tmp", dp="central", num_clients=200, sample_clients=20, dp_sampling=sampling)
    sigma, rounds = 1.3, 15
    got = planned_epsilon(cfg, sigma, Plan(rounds=rounds, individual=1))
    rel = privacy_accountant.NeighboringRelation
    if sampling == "fixed":  # replace-one: a sum of C-clipped updates moves by up to 2C
        acc = RdpAccountant(neighboring_relation=rel.REPLACE_ONE)
        rnd = dp_event.SampledWithoutReplacementDpEvent(200, 20, dp_event.GaussianDpEvent(sigma / 2))
    elif sampling == "poisson":
        acc = RdpAccountant(neighboring_relation=rel.ADD_OR_REMOVE_ONE)
        rnd = dp_event.PoissonSampledDpEvent(0.1, dp_event.GaussianDpEvent(sigma))
    else:
        acc = RdpAccountant(neighboring_relation=rel.ADD_OR_REMOVE_ONE)
        rnd = dp_event.GaussianDpEvent(sigma)
    acc.compose(dp_event.GaussianDpEvent(sigma), 1)  # the per-client release, once
    acc.compose(rnd, rounds)
    assert got == pytest.approx(acc.get_epsilon(1e-5), rel=1e-9)


def test_calibration_finds_the_smallest_sigma_that_fits():
    cfg = tiny_settings("/tmp", dp="central", num_clients=200, sample_clients=20)
    plan = Plan(rounds=10, individual=1)
    for target in (8.0, 1.0):
        sigma = calibrate(cfg, plan, target)
        assert planned_epsilon(cfg, sigma, plan) <= target
        assert planned_epsilon(cfg, sigma * 0.99, plan) > target
    # more rounds cost more: the same budget needs more noise
    assert calibrate(cfg, Plan(rounds=40, individual=1), 8.0) > calibrate(cfg, plan, 8.0)
