"""FedProx: FedIT's messages and FedAvg, with a proximal term that keeps each client's adapter near
the one it received.

Li et al., "Federated Optimization in Heterogeneous Networks" (MLSys 2020). The local objective is the
task loss plus `(mu / 2) * ||w - w_received||^2` over the trainable (LoRA) parameters, `w_received`
held fixed for the round; `mu = 0` is FedIT (Flower's FedProx strategy calls it `proximal_mu`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flwr.app import RecordDict

from fedrouter.algorithms.base import Algorithm, ClientRuntime, received_adapter, register, reply
from fedrouter.algorithms.fedit import FedITClient, FedITServer
from fedrouter.config import AlgorithmSettings, RunConfig, setting
from fedrouter.steps.train import train_adapter
from fedrouter.utils.lazy import lazy_import
from fedrouter.utils.seeding import derive_seed

torch = lazy_import("torch")


@dataclass(frozen=True)
class FedProxSettings(AlgorithmSettings):
    mu: float = setting(0.01, "weight of the proximal term (mu/2)·||w - w_received||² on the LoRA parameters; 0 = FedIT")

    def check(self, run: RunConfig) -> list[str]:
        return [] if self.mu >= 0 else [f"mu={self.mu} must be >= 0"]


class FedProxClient(FedITClient):
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        bb = rt.backbone
        bb.activate("main")
        bb.set_state(received_adapter(rt, content))
        params = bb.parameters("main")
        anchor = [p.detach().clone() for p in params]  # w_received, fixed for the round
        mu = float(rt.cfg.alg.mu)

        def proximal_loss(backbone, batch) -> torch.Tensor:
            prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
            return backbone.model(**batch).loss + 0.5 * mu * prox

        res = train_adapter(bb, rt.examples, rt.cfg, rt.cfg.lr_at(rt.rnd), derive_seed(rt.cfg.seed, rt.client_id, rt.rnd),
                            loss_fn=proximal_loss)
        return reply({"loss": res.loss, "num_samples": res.num_samples}, {"adapter": bb.get_state()})


ALGORITHM = register(Algorithm("fedprox", FedITServer, FedProxClient, FedProxSettings,
                               summary="FedIT with a proximal term pulling each client's adapter to the received one"))
