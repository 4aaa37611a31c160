"""FedCluster: clustered federated learning on LoRA updates, one adapter per group of clients.

Baseline of Talasso et al., "Task-Centric Personalized Federated Fine-Tuning of Language Models"
(arXiv 2604.00050), see docs/method.md (clustering by the cosine
similarity of client updates, after Sattler et al., "Clustered Federated Learning", 2020).

Plain FedAvg until round `sim_round`. In that round the server takes every participant's update of
the LoRA B matrices (trained adapter minus the adapter it received), builds the clients' cosine-
similarity matrix, and clusters its rows with Ward linkage into `n_groups` groups (4 by default = the benchmark's tasks). From then on
each client trains and is evaluated with its group's adapter (FedAvg within groups; a group with no
participant keeps its adapter).

Choices:
- `update_scope=last` (the reference default): only the last LoRA module's B update (model
  order) is compared; "all" compares all modules' B updates, flattened.
- A client not sampled at `sim_round` is grouped on its first later participation: it trains from
  the adapter everyone received at `sim_round`, so its update is comparable, and joins the group
  whose members' updates are most similar on average. That round its adapter is not averaged into
  the group (it started from a different adapter than the group's members).
- `n_groups=auto` picks the group count in `group_k_range` with the best silhouette of the Ward labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    from_record,
    metrics_of,
    register,
    to_record,
)
from fedrouter.algorithms.fedit import FedITClient, FedITServer
from fedrouter.config import AlgorithmSettings, IntOrAuto, IntRange, RunConfig, setting
from fedrouter.models.backbone import AdapterState
from fedrouter.steps.aggregate import select
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.fedcluster")

UPDATE_SCOPES = ("last", "all")


@dataclass(frozen=True)
class FedClusterSettings(AlgorithmSettings):
    sim_round: int = setting(3, "round at which clients are grouped (plain FedAvg until then)")
    n_groups: IntOrAuto = setting(IntOrAuto("4"), "client groups (Ward clustering of the clients' B-update similarities); int or auto")
    group_k_range: IntRange = setting(IntRange("2,8"), "min,max groups tried by n_groups=auto")
    update_scope: str = setting("last", "last (the reference's: the last LoRA module) | all: which modules' B updates are compared")

    def check(self, run: RunConfig) -> list[str]:
        out = self.group_k_range.problems("group_k_range") + self.n_groups.problems("n_groups")
        if not 1 <= self.sim_round <= run.num_rounds:
            out.append(f"sim_round={self.sim_round} must be in 1..num_rounds={run.num_rounds}")
        if self.update_scope not in UPDATE_SCOPES:
            out.append(f"update_scope={self.update_scope!r} is not known; allowed: {', '.join(UPDATE_SCOPES)}")
        if not self.n_groups.auto and self.n_groups.value > run.num_clients:
            out.append(f"n_groups={self.n_groups} groups is more than num_clients={run.num_clients}")
        return out


def b_update(trained: AdapterState, received: AdapterState | None, scope: str = "last") -> np.ndarray:
    """Flattened B update; `received` None means the seeded init, whose B is zero."""
    keys = list(select(trained, "lora_B"))  # model order (as the backbone lists its parameters)
    keys = keys[-1:] if scope == "last" else keys
    return np.concatenate([(trained[k] - (received[k] if received else 0.0)).ravel() for k in keys]).astype(np.float64)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def ward_groups(similarity: np.ndarray, k: int) -> np.ndarray:
    """Ward clustering of the similarity matrix's rows, groups renumbered by first member."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(similarity)
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    labels = AgglomerativeClustering(n_clusters=min(k, n), linkage="ward").fit(similarity).labels_
    order = {lab: i for i, lab in enumerate(dict.fromkeys(labels))}  # stable names across runs
    return np.array([order[lab] for lab in labels], dtype=np.int64)


def choose_groups(similarity: np.ndarray, k_min: int, k_max: int) -> int:
    from sklearn.metrics import silhouette_score

    ks = [k for k in range(k_min, min(k_max, len(similarity) - 1) + 1)]
    if not ks:
        return 1
    scores = {k: silhouette_score(similarity, ward_groups(similarity, k)) for k in ks}
    return max(scores, key=scores.get)


class FedClusterClient(FedITClient):
    """Trains and evaluates whatever adapter the server sends (its group's): FedIT's client."""


class FedClusterServer(FedITServer):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.groups: dict[int, int] = {}  # client -> group, from sim_round on
        self.group_adapters: dict[int, AdapterState] = {}
        self.sim_start: AdapterState | None = None  # what clients received at sim_round (None = init)
        self.ref_updates: dict[int, np.ndarray] = {}  # B updates at sim_round, to place late clients
        self.opts: FedClusterSettings = cfg.alg
        if not self.opts.n_groups.auto and self.opts.n_groups.value == 1:
            log.warning("n_groups=1: one group for everyone, FedCluster degenerates to FedIT")

    def _message(self, state: AdapterState | None) -> RecordDict:
        return RecordDict({"adapter": to_record(state)}) if state is not None else RecordDict()

    def _adapter_of(self, cid: int) -> AdapterState | None:
        return self.group_adapters[self.groups[cid]] if cid in self.groups else self.global_adapter

    def configure_train(self, rnd, client_ids):
        if rnd <= self.opts.sim_round:
            return super().configure_train(rnd, client_ids)
        # Ungrouped (late) clients start from the sim_round adapter so their update can be compared.
        return {cid: self._message(self._adapter_of(cid) if cid in self.groups else self.sim_start) for cid in client_ids}

    def aggregate_train(self, rnd, replies):
        if rnd < self.opts.sim_round:
            return super().aggregate_train(rnd, replies)
        late: set[int] = set()
        assigned = dict(self.groups)  # before this round's late clients join: the dp denominators' basis
        if rnd == self.opts.sim_round:
            self._form_groups(replies)
            super().aggregate_train(rnd, replies)  # global FedAvg: the fallback of clients never grouped
            if self.privacy.on:  # one release per round: every group starts from the noisy global average
                self.group_adapters = {g: dict(self.global_adapter) for g in sorted(set(self.groups.values()))}
                return {}
        else:
            late = self._place_late(replies)
        members: dict[int, list[tuple[AdapterState, float]]] = {}
        for cid, content in replies.items():
            if cid not in late:
                members.setdefault(self.groups[cid], []).append(
                    (from_record(content["adapter"]), metrics_of(content)["num_samples"]))
        if self.privacy.on:  # every group gets its noisy step, over its expected number of contributors
            rate = self.cfg.sample_clients / self.cfg.num_clients
            for g in sorted(self.group_adapters):
                items = members.get(g, [])
                expected = rate * sum(1 for c in assigned.values() if c == g)
                self.group_adapters[g] = self.fedavg([s for s, _ in items], [], self.group_adapters[g],
                                                     expected=max(expected, 1.0), tag=g)
        else:
            for g, items in members.items():
                self.group_adapters[g] = self.fedavg([s for s, _ in items], [w for _, w in items])
        return {f"contributors/{g}": float(len(v)) for g, v in sorted(members.items())}

    @classmethod
    def individual_releases(cls, cfg) -> int:
        return 1  # dp: each client's B update is compared with the others' once (at sim_round or when it joins)

    def _compared_update(self, cid: int, content: RecordDict) -> np.ndarray:
        """The B update the grouping compares. dp on: the client's clipped update plus Gaussian noise of std
        sigma x 2 dp_clip (its sensitivity: the client's data replaced), so the groups are a noisy release."""
        state = from_record(content["adapter"])
        if self.privacy.on:
            rng = np.random.default_rng(derive_seed(self.cfg.seed, 0xC7, cid))
            std = 2 * self.privacy.sigma * self.cfg.dp_clip
            state = {k: (v.astype(np.float64) + rng.normal(0.0, std, v.shape)).astype(v.dtype) for k, v in state.items()}
        return b_update(state, self.sim_start, self.opts.update_scope)

    def _form_groups(self, replies: dict[int, RecordDict]) -> None:
        cids = sorted(replies)
        self.sim_start = self.global_adapter
        scope = self.opts.update_scope
        self.ref_updates = {c: self._compared_update(c, replies[c]) for c in cids}
        self.privacy.account_individual("FedCluster's grouping updates")
        sim = cosine_matrix(np.stack([self.ref_updates[c] for c in cids]))
        n, ks = self.opts.n_groups, self.opts.group_k_range
        k = choose_groups(sim, ks.lo, ks.hi) if n.auto else n.value
        if k > len(cids):
            log.warning("n_groups=%d but only %d clients at sim_round; using %d groups", k, len(cids), len(cids))
        labels = ward_groups(sim, k)
        self.groups = {c: int(g) for c, g in zip(cids, labels, strict=True)}
        log.info("round %d: clients grouped by their B updates (%s modules): %s", self.opts.sim_round, scope,
                 self.groups)

    def _place_late(self, replies: dict[int, RecordDict]) -> set[int]:
        """Clients first seen after sim_round join the group whose members' updates they resemble
        most; returns them (their adapters started elsewhere and are not averaged this round)."""
        late = {c for c in replies if c not in self.groups}
        ref_cids = sorted(self.ref_updates)
        ref = np.stack([self.ref_updates[c] for c in ref_cids])
        for cid in sorted(late):
            u = self._compared_update(cid, replies[cid])
            sims = cosine_matrix(np.vstack([u, ref]))[0, 1:]
            by_group: dict[int, list[float]] = {}
            for c, s in zip(ref_cids, sims, strict=True):
                by_group.setdefault(self.groups[c], []).append(float(s))
            self.groups[cid] = max(sorted(by_group), key=lambda g: np.mean(by_group[g]))
            log.info("client %d (absent at sim_round) joins group %d", cid, self.groups[cid])
        return late

    def configure_evaluate(self, rnd, client_ids):
        return {cid: self._message(self._adapter_of(cid)) for cid in client_ids}

    def diagnostics(self) -> dict[str, Any]:
        return {"groups": {str(c): g for c, g in sorted(self.groups.items())}} if self.groups else {}

    def adapters(self) -> dict[str, AdapterState]:
        if not self.group_adapters:
            return super().adapters()
        return {f"group_{g}": s for g, s in sorted(self.group_adapters.items())}

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, _ = super().state_dict()
        for g, state in self.group_adapters.items():
            arrays.update({f"group_{g}/{k}": v for k, v in state.items()})
        arrays.update({f"sim_start/{k}": v for k, v in (self.sim_start or {}).items()})
        arrays.update({f"ref/{c}": u for c, u in self.ref_updates.items()})
        return arrays, {"groups": {str(c): g for c, g in self.groups.items()}}

    def load_state_dict(self, arrays, meta) -> None:
        parts: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            head, name = key.split("/", 1)
            parts.setdefault(head, {})[name] = value
        self.global_adapter = parts.pop("global", None)
        self.sim_start = parts.pop("sim_start", None)
        self.ref_updates = {int(c): u for c, u in parts.pop("ref", {}).items()}
        self.group_adapters = {int(h.split("_")[1]): s for h, s in parts.items()}
        self.groups = {int(c): g for c, g in meta["groups"].items()}


ALGORITHM = register(Algorithm("fedcluster", FedClusterServer, FedClusterClient, FedClusterSettings,
                               summary="FedAvg, then per-group adapters from Ward clustering of B updates"))
