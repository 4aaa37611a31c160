"""Local: every client fine-tunes its own LoRA adapter on its own data; nothing is sent or aggregated.

The no-collaboration baseline of Talasso et al., "Task-Centric Personalized Federated Fine-Tuning of
Language Models" (arXiv 2604.00050), see docs/method.md. The server
only schedules rounds: its messages carry no arrays and the clients' replies carry only metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    ServerAlgorithm,
    client_metrics,
    register,
    reply,
    score_groups,
)
from fedrouter.algorithms.client_state import ClientState
from fedrouter.models.backbone import AdapterState
from fedrouter.steps.train import train_adapter
from fedrouter.utils.seeding import derive_seed


def own_adapter(rt: ClientRuntime, before_round: int) -> AdapterState:
    """The client's newest adapter saved for a round < before_round, or the shared seeded init
    (the same start every method uses, so the baselines are comparable)."""
    st = rt.store.load(before_round=before_round)
    return st.arrays if st.arrays else rt.backbone.init_state(rt.cfg.seed)


class LocalClient(ClientAlgorithm):
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        rt.backbone.activate("main")
        rt.backbone.set_state(own_adapter(rt, rt.rnd))
        res = train_adapter(rt.backbone, rt.examples, rt.cfg, rt.cfg.lr_at(rt.rnd),
                            derive_seed(rt.cfg.seed, rt.client_id, rt.rnd))
        # Saved for this round (versioned): a resumed round restarts from the previous round's adapter.
        rt.store.save(ClientState(rt.rnd, rt.backbone.get_state(), {}))
        return reply({"loss": res.loss, "num_samples": res.num_samples})  # metrics only: no ArrayRecord

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        # Evaluation follows training of the same round, whose state is therefore included.
        state = own_adapter(rt, rt.rnd + 1)
        scores = score_groups(rt, [(state, np.arange(len(rt.data.test)))])
        return reply(client_metrics(rt, scores))


class LocalServer(ServerAlgorithm):
    """Stateless: the message only tells a client to train (or evaluate) its own adapter."""

    SENDS_UPDATES = False  # nothing trained leaves a client: epsilon 0 with dp on

    def configure_train(self, rnd, client_ids):
        return {cid: RecordDict() for cid in client_ids}

    def aggregate_train(self, rnd, replies):
        return {}

    def configure_evaluate(self, rnd, client_ids):
        return {cid: RecordDict() for cid in client_ids}

    def adapters(self) -> dict[str, AdapterState]:
        return {}  # every adapter is private to its client (kept in its store)

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def load_state_dict(self, arrays, meta) -> None:
        pass


ALGORITHM = register(Algorithm("local", LocalServer, LocalClient, summary="each client trains its own adapter; no communication"))
