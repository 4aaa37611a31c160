"""The server's side of differential privacy: the noise multiplier of the run, the check of every reply's
update norm, the noisy fixed-denominator average the algorithms call, and the accountant (checkpointed)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from flwr.app import RecordDict

from fedrouter.privacy.accounting import Plan, calibrate, individual_event, new_accountant, round_event
from fedrouter.privacy.mechanism import AdapterState, clipped_updates, noisy_average
from fedrouter.utils import process_state
from fedrouter.utils.records import from_record, to_record
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.privacy")

DP_INIT = "dp_init"  # a reply's record: the seeded LoRA initialisation it started from (no data in it)
TOLERANCE = 1e-4  # relative slack on a reply's update norm (float32 rounding of start + update)


class BudgetExhausted(RuntimeError):
    """The next round would spend more than dp_target_epsilon (dp_budget=stop)."""


def plan_of(cfg) -> Plan:
    """The releases a run of cfg's algorithm plans: its training rounds if it sends updates, and its
    per-client releases (a registry entry's server class says)."""
    from fedrouter.config import get_algorithm

    server = get_algorithm(cfg.fed_alg).server
    return Plan(rounds=cfg.num_rounds if server.SENDS_UPDATES else 0, individual=server.individual_releases(cfg))


@process_state.cached(maxsize=16)
def noise_multiplier(cfg) -> float:
    """Sigma of every release of the run: dp_noise_multiplier, or (dp_target_epsilon with dp_budget=calibrate)
    the smallest sigma whose planned epsilon fits the target. Clients compute the same value (dp=local, the
    clustering release)."""
    if cfg.dp_target_epsilon > 0 and cfg.dp_budget == "calibrate":
        plan = plan_of(cfg)
        if not plan.rounds and not plan.individual:
            return cfg.dp_noise_multiplier
        return calibrate(cfg, plan, cfg.dp_target_epsilon)
    return cfg.dp_noise_multiplier


class ServerPrivacy:
    """Created with the server half; inert when dp=off (every call returns its input or nothing)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.on = cfg.privacy.on
        self.init: AdapterState | None = None  # the seeded LoRA init (learned from the first reply carrying it)
        self.rnd = 0
        self.accountant = None
        self.sigma = 0.0
        if self.on:
            self.sigma = noise_multiplier(cfg)
            stop = cfg.dp_target_epsilon if cfg.dp_target_epsilon > 0 and cfg.dp_budget == "stop" else None
            self.accountant = new_accountant(cfg, stop)
        self.server_clipped: dict[str, list[int]] = {}  # round -> clients whose reply the server had to clip

    # --- releases --------------------------------------------------------------------------------------
    def screen(self, rnd: int, messages: dict[int, RecordDict], replies: dict[int, RecordDict]) -> dict[int, RecordDict]:
        """Before aggregation: learn the seeded init from a reply that carries it, and make sure every reply's
        whole update (every array it sends, against what the server sent it or the init) has norm <= dp_clip,
        clipping it on the server otherwise (a client that did not clip, or a hostile one)."""
        self.rnd = rnd
        if not self.on:
            return replies
        for content in replies.values():
            if DP_INIT in content.array_records:
                if self.init is None:
                    self.init = from_record(content[DP_INIT])
                del content[DP_INIT]
        clipped = []
        if self.cfg.dp == "local":  # the clients noised their clipped updates: a norm bound no longer applies
            return replies
        for cid, content in replies.items():
            names = list(content.array_records.keys())
            if not names:
                continue
            sent = messages.get(cid, RecordDict())
            trained = {n: from_record(content[n]) for n in names}
            starts = {n: self.reference(from_record(sent[n]) if n in sent.array_records else None, trained[n].keys())
                      for n in names}
            sent_back, norm = clipped_updates(starts, trained, self.cfg.dp_clip)
            if norm > self.cfg.dp_clip * (1 + TOLERANCE):
                clipped.append(cid)
                for n, state in sent_back.items():
                    content[n] = to_record(state)
        if clipped:
            self.server_clipped[str(rnd)] = clipped
            log.warning("round %d: clients %s sent updates of norm > dp_clip=%g; clipped on the server", rnd, clipped,
                        self.cfg.dp_clip)
        return replies

    def reference(self, state: AdapterState | None, keys) -> AdapterState:
        """What an update is measured against: the state the server sent, or the seeded init."""
        if state is not None:
            return {k: state[k] for k in keys}
        if self.init is None:
            raise RuntimeError("dp: a reply started from the seeded init but no reply carried it (dp_init)")
        return {k: self.init[k] for k in keys}

    def average(self, ref: AdapterState | None, states: list[AdapterState], expected: float, tag: int = 0,
                keys=None) -> AdapterState:
        """The DP-FedAvg step for one aggregated group: ref + (sum of updates + noise) / expected, where
        `expected` is the group's expected number of contributors this round (fixed before the replies).
        Central: noise std sigma x dp_clip here; local: the clients added theirs."""
        if keys is None:
            keys = (ref if ref is not None else states[0] if states else self.init or {}).keys()
        ref = self.reference(ref, keys)
        std = self.sigma * self.cfg.dp_clip if self.cfg.dp == "central" else 0.0
        rng = np.random.default_rng(derive_seed(self.cfg.seed, 0xD9, self.rnd, tag))
        return noisy_average(ref, states, max(float(expected), 1e-12), std, rng)

    # --- accounting ------------------------------------------------------------------------------------
    def account_individual(self, what: str) -> None:
        if self.on:
            self.accountant.compose(individual_event(self.cfg, self.sigma))
            log.info("privacy: %s released once per client (noise multiplier %.3f): epsilon %.3f", what,
                     self.sigma, self.epsilon())

    def check_budget(self, rnd: int) -> None:
        """dp_budget=stop: raise BudgetExhausted if round `rnd` would take epsilon past the target."""
        if self.on and self.accountant.config.max_epsilon is not None \
                and self.accountant.would_exceed(round_event(self.cfg, self.sigma)):
            raise BudgetExhausted(f"round {rnd} would take epsilon past dp_target_epsilon={self.cfg.dp_target_epsilon} "
                                  f"(spent {self.epsilon():.3f} after {self.accountant.num_releases} releases)")

    def account_round(self) -> None:
        if self.on:
            self.accountant.compose(round_event(self.cfg, self.sigma))

    def epsilon(self) -> float:
        if not self.on or not self.accountant.num_releases:
            return 0.0
        return float(self.accountant.get_epsilon(self.accountant.config.target_delta))

    def spent(self) -> dict[str, Any] | None:
        """What a metrics row and results.json carry (None with dp off)."""
        if not self.on:
            return None
        cfg = self.accountant.config
        return {"epsilon": self.epsilon(), "delta": cfg.target_delta, "noise_multiplier": self.sigma,
                "releases": self.accountant.num_releases, "mode": self.cfg.dp, "clip": self.cfg.dp_clip,
                "sampling": cfg.sampling_method.value, "relation": cfg.neighboring_relation.value}

    # --- checkpoint ------------------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if not self.on:
            return {}, {}
        arrays = {f"{DP_INIT}/{k}": v for k, v in (self.init or {}).items()}
        return arrays, {"accountant": self.accountant.state_dict(), "sigma": self.sigma,
                        "server_clipped": self.server_clipped}

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        if not self.on or not meta:
            return
        self.init = {k.split("/", 1)[1]: v for k, v in arrays.items()} or None
        self.accountant.load_state_dict(meta["accountant"])
        self.sigma = float(meta["sigma"])
        self.server_clipped = dict(meta.get("server_clipped", {}))


def split_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A checkpoint's arrays: (the algorithm's, the privacy layer's)."""
    mine = {k: v for k, v in arrays.items() if k.startswith(f"{DP_INIT}/")}
    return {k: v for k, v in arrays.items() if k not in mine}, mine
