"""Privacy accounting: which events a run releases and what they cost, through Flower's `RdpAccountant`
(Google's dp-accounting underneath). Nothing here computes an RDP curve itself.

Each release is a Gaussian mechanism; its accounted noise multiplier is the noise std divided by the
release's L2 sensitivity under the neighbouring relation the accountant uses:
- a training round's aggregated sums (central DP): every sampled client's whole update clipped to C, noise
  std sigma*C on each sum. Under add-or-remove-one (dp_sampling=poisson | none) the sensitivity is C, so
  sigma; under replace-one (dp_sampling=fixed, the sampling-without-replacement analysis) it is 2C, so sigma/2.
- a client's own release (dp=local updates; the clustering step's centroids; a method's per-client grouping updates):
  the sensitivity is what replacing that client's data can change (2C for a clipped update, the centroid
  set's bound for centroids), the noise is calibrated to it, and no amplification is claimed (whoever
  receives it knows who sent it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flwr.serverapp import GaussianPrivacyEvent, NeighboringRelation, PrivacyConfig, SamplingMethod

log = logging.getLogger("fedrouter.privacy")

# dp-accounting warns (through absl) for every RDP order a subsampled series does not converge at and drops
# those orders from the epsilon; a calibration evaluates hundreds of curves.
logging.getLogger("absl").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Plan:
    """What a run releases, for the accountant: `rounds` training rounds (each a sampled release of the
    aggregated updates) and `individual` per-client releases (each client once)."""

    rounds: int
    individual: int = 0


def accounting_model(dp: str, sampling: str) -> tuple[SamplingMethod, NeighboringRelation]:
    """The sampling the accountant assumes and its neighbouring relation (the pairs Flower's accountant supports)."""
    if dp == "local" or sampling == "none":
        return SamplingMethod.NO_AMPLIFICATION, NeighboringRelation.ADD_OR_REMOVE_ONE
    if sampling == "poisson":
        return SamplingMethod.POISSON, NeighboringRelation.ADD_OR_REMOVE_ONE
    return SamplingMethod.WITHOUT_REPLACEMENT, NeighboringRelation.REPLACE_ONE


def privacy_config(cfg, max_epsilon: float | None = None) -> PrivacyConfig:
    sampling, relation = accounting_model(cfg.dp, cfg.dp_sampling)
    return PrivacyConfig(target_delta=cfg.privacy.delta_for(cfg.num_clients), population_size=cfg.num_clients,
                         neighboring_relation=relation, sampling_method=sampling, max_epsilon=max_epsilon)


def round_event(cfg, sigma: float) -> GaussianPrivacyEvent:
    """One training round's release. Central: the noisy sums of the sampled clients' clipped updates. Local: each
    client's own noisy update (sensitivity 2C: its data replaced), no amplification."""
    sampling, relation = accounting_model(cfg.dp, cfg.dp_sampling)
    replace = cfg.dp == "local" or relation is NeighboringRelation.REPLACE_ONE
    sample = cfg.num_clients if sampling is SamplingMethod.NO_AMPLIFICATION else cfg.sample_clients
    return GaussianPrivacyEvent(noise_multiplier=sigma / 2 if replace else sigma, sample_size=sample,
                                population_size=cfg.num_clients)


def individual_event(cfg, sigma: float) -> GaussianPrivacyEvent:
    """A per-client release whose noise std is sigma x its sensitivity under replacing the client's data: every
    client releases (sample = population), nothing amplified."""
    return GaussianPrivacyEvent(noise_multiplier=sigma, sample_size=cfg.num_clients, population_size=cfg.num_clients)


def new_accountant(cfg, max_epsilon: float | None = None):
    from flwr.serverapp import RdpAccountant  # dp-accounting is imported with it (flwr[dp])

    return RdpAccountant(privacy_config(cfg, max_epsilon))


def planned_epsilon(cfg, sigma: float, plan: Plan) -> float:
    """Epsilon after every release of the plan at noise multiplier sigma (at the run's delta)."""
    acc = new_accountant(cfg)
    if plan.individual:
        acc.compose(individual_event(cfg, sigma), plan.individual)
    if plan.rounds:
        acc.compose(round_event(cfg, sigma), plan.rounds)
    return acc.get_epsilon(cfg.privacy.delta_for(cfg.num_clients)) if acc.num_releases else 0.0


def calibrate(cfg, plan: Plan, target: float, tol: float = 1e-3) -> float:
    """The smallest noise multiplier (to relative `tol`) whose planned epsilon is <= target: bisection over
    the accountant's answers (epsilon falls as sigma grows)."""
    lo, hi = 1e-2, 1.0
    while planned_epsilon(cfg, hi, plan) > target:
        lo, hi = hi, hi * 2
        if hi > 1e5:
            raise ValueError(f"dp_target_epsilon={target}: no noise multiplier up to 1e5 reaches it")
    if planned_epsilon(cfg, lo, plan) <= target:
        return lo
    while hi / lo > 1 + tol:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if planned_epsilon(cfg, mid, plan) <= target else (mid, hi)
    return hi
