"""FedSA-LoRA: share the LoRA A matrices, keep the B matrices personal.

Guo et al., "Selective Aggregation for Low-Rank Adaptation in Federated Learning" (ICLR 2025,
arXiv 2410.01463); baseline of Talasso et al. (arXiv 2604.00050), shared/docs/ALGORITHMS.md.
Clients train A and B; only A is sent and averaged (weighted by samples trained on); each client's
B stays in its store. Everyone starts from the same seeded A and B = 0; inference uses the global
A with the client's own B.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import RecordDict

from fedrouter.aggregate import select, weighted_average
from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    ServerAlgorithm,
    from_record,
    metrics_of,
    register,
    reply,
    score_groups,
    to_record,
)
from fedrouter.client_state import ClientState
from fedrouter.evaluate import summarize_client
from fedrouter.models.backbone import AdapterState
from fedrouter.seeding import derive_seed
from fedrouter.train import train_adapter


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
        return reply(summarize_client(scores, [r["task"] for r in rt.data.test]))


class FedSAServer(ServerAlgorithm):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.global_a: AdapterState | None = None  # lora_A keys only; None = the seeded init

    def _with_a(self, client_ids) -> dict[int, RecordDict]:
        if self.global_a is None:
            return {cid: RecordDict() for cid in client_ids}
        return {cid: RecordDict({"adapter": to_record(self.global_a)}) for cid in client_ids}

    def configure_train(self, rnd, client_ids):
        return self._with_a(client_ids)

    def aggregate_train(self, rnd, replies):
        # select() again: whatever a client sends, only A is ever aggregated.
        states = [select(from_record(c["adapter"]), "lora_A") for c in replies.values()]
        weights = [metrics_of(c)["num_samples"] for c in replies.values()]
        self.global_a = weighted_average(states, weights)
        return {}

    def configure_evaluate(self, rnd, client_ids):
        return self._with_a(client_ids)

    def adapters(self) -> dict[str, AdapterState]:
        # Only the shared half exists on the server (not a loadable PEFT adapter on its own).
        return {"global_A": self.global_a} if self.global_a is not None else {}

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {f"global_A/{k}": v for k, v in (self.global_a or {}).items()}, {}

    def load_state_dict(self, arrays, meta) -> None:
        self.global_a = {k.split("/", 1)[1]: v for k, v in arrays.items()} or None


ALGORITHM = register(Algorithm("fedsa", FedSAServer, FedSAClient,
                               summary="FedAvg of LoRA A only; B stays personal"))
