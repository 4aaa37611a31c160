"""FedIT (federated instruction tuning): FedAvg over the whole LoRA adapter, one adapter for all.

Zhang et al., "Towards Building the Federated GPT: Federated Instruction Tuning" (arXiv 2305.05644).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.app import RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    ServerAlgorithm,
    from_record,
    metrics_of,
    received_adapter,
    register,
    reply,
    to_record,
)
from fedrouter.steps.aggregate import select
from fedrouter.steps.train import train_adapter
from fedrouter.utils.seeding import derive_seed


class FedITClient(ClientAlgorithm):
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        rt.backbone.activate("main")
        rt.backbone.set_state(received_adapter(rt, content))
        res = train_adapter(rt.backbone, rt.examples, rt.cfg, rt.cfg.lr_at(rt.rnd), derive_seed(rt.cfg.seed, rt.client_id, rt.rnd))
        return reply({"loss": res.loss, "num_samples": res.num_samples}, {"adapter": rt.backbone.get_state()})


class FedITServer(ServerAlgorithm):
    """One shared adapter, FedAvg'd over the replies (weighted by samples trained on). Subclasses
    share only part of it (`PART`: FedSA-LoRA keeps B on the clients)."""

    PART = "all"  # which LoRA matrices are shared: "all", "lora_A" or "lora_B"
    SAVED_AS = "global"  # adapter folder name at evaluation rounds

    def __init__(self, cfg):
        super().__init__(cfg)
        self.global_adapter: dict[str, np.ndarray] | None = None  # None = the shared seeded init

    def _with_adapter(self, client_ids: Sequence[int]) -> dict[int, RecordDict]:
        if self.global_adapter is None:
            return {cid: RecordDict() for cid in client_ids}
        return {cid: RecordDict({"adapter": to_record(self.global_adapter)}) for cid in client_ids}

    def configure_train(self, rnd, client_ids):
        return self._with_adapter(client_ids)

    def aggregate_train(self, rnd, replies):
        # select(): whatever a client sends, only the shared part is ever aggregated.
        states = [select(from_record(c["adapter"]), self.PART) for c in replies.values()]
        weights = [metrics_of(c)["num_samples"] for c in replies.values()]
        ref = select(self.global_adapter, self.PART) if self.global_adapter is not None else None
        self.global_adapter = self.fedavg(states, weights, ref, expected=self.cfg.sample_clients)
        return {}

    def configure_evaluate(self, rnd, client_ids):
        return self._with_adapter(client_ids)

    def adapters(self):
        return {self.SAVED_AS: self.global_adapter} if self.global_adapter is not None else {}

    def state_dict(self):
        arrays = {f"global/{k}": v for k, v in (self.global_adapter or {}).items()}
        return arrays, {}

    def load_state_dict(self, arrays, meta):
        self.global_adapter = {k.split("/", 1)[1]: v for k, v in arrays.items()} or None


ALGORITHM = register(Algorithm("fedit", FedITServer, FedITClient, summary="FedAvg over LoRA A and B"))
