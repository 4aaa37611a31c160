"""FedSA-LoRA: share the LoRA A matrices, keep the B matrices personal.

Guo et al., "Selective Aggregation for Low-Rank Adaptation in Federated Learning" (ICLR 2025,
arXiv 2410.01463); baseline of Talasso et al. (arXiv 2604.00050); see docs/method.md.
Clients train A and B; only A is sent and averaged (weighted by samples trained on); each client's
B stays in its store. Everyone starts from the same seeded A and B = 0; inference uses the global
A with the client's own B.
"""

from __future__ import annotations

import numpy as np
from flwr.app import RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    client_metrics,
    from_record,
    register,
    reply,
    score_groups,
)
from fedrouter.algorithms.client_state import ClientState
from fedrouter.algorithms.fedit import FedITServer
from fedrouter.models.backbone import AdapterState
from fedrouter.steps.aggregate import select
from fedrouter.steps.train import train_adapter
from fedrouter.utils.seeding import derive_seed


def personal_adapter(rt: ClientRuntime, content: RecordDict, before_round: int) -> AdapterState:
    """Global A (as sent; the shared seeded init before any aggregation) + this client's own B
    (newest saved for a round < before_round; zero before its first training)."""
    state = rt.backbone.init_state(rt.cfg.seed)  # seeded A, B = 0: the common FedSA start
    if "adapter" in content.array_records:
        state.update(select(from_record(content["adapter"]), "lora_A"))
    state.update(rt.store.load(before_round=before_round).arrays)  # holds lora_B keys only
    return state


class FedSAClient(ClientAlgorithm):
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        rt.backbone.activate("main")
        rt.backbone.set_state(personal_adapter(rt, content, rt.rnd))
        res = train_adapter(rt.backbone, rt.examples, rt.cfg, rt.cfg.lr_at(rt.rnd),
                            derive_seed(rt.cfg.seed, rt.client_id, rt.rnd))
        trained = rt.backbone.get_state()
        rt.store.save(ClientState(rt.rnd, select(trained, "lora_B"), {}))  # B never leaves the client
        return reply({"loss": res.loss, "num_samples": res.num_samples}, {"adapter": select(trained, "lora_A")})

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        # rnd + 1: this round's B (saved by this round's training) is the one to evaluate.
        state = personal_adapter(rt, content, rt.rnd + 1)
        scores = score_groups(rt, [(state, np.arange(len(rt.data.test)))])
        return reply(client_metrics(rt, scores))


class FedSAServer(FedITServer):
    """FedIT's server on the A matrices alone: `global_adapter` holds lora_A keys only. What it saves
    at evaluation rounds is that shared half (not a loadable PEFT adapter on its own)."""

    PART = "lora_A"
    SAVED_AS = "global_A"


ALGORITHM = register(Algorithm("fedsa", FedSAServer, FedSAClient,
                               summary="FedAvg of LoRA A only; B stays personal"))
