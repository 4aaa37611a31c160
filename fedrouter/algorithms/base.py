"""What every algorithm implements (a server half and a client half), the registry, and record helpers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import ConfigRecord, MetricRecord, RecordDict

# The registry lives with the settings (reading settings needs it); algorithm modules import it from here.
from fedrouter.config.registry import (  # noqa: F401
    Algorithm,
    algorithms,
    default_algorithm,
    get_algorithm,
    known_algorithms,
    register,
)
from fedrouter.metrics import MetricSelection, combine_clients, headline_scores, score_samples, summarize_client
from fedrouter.steps.aggregate import weighted_average
from fedrouter.steps.batching import mixed_batches_pay
from fedrouter.steps.generate import generate
from fedrouter.utils import process_state
from fedrouter.utils.records import LAYOUT, from_record, to_record  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from fedrouter.algorithms.client_state import ClientState, ClientStore
    from fedrouter.config import RunConfig
    from fedrouter.data.splits import ClientData
    from fedrouter.models.backbone import AdapterState, Backbone

# --- records ------------------------------------------------------------------------------------
# (packing: fedrouter.utils.records, re-exported here for the algorithms)


def metrics_of(content: RecordDict) -> dict[str, float]:
    return dict(content["metrics"]) if "metrics" in content.metric_records else {}


def meta_of(content: RecordDict) -> dict[str, Any]:
    return dict(content["meta"]) if "meta" in content.config_records else {}


def reply(metrics: dict[str, float], arrays: dict[str, AdapterState] | None = None,
          meta: dict[str, Any] | None = None) -> RecordDict:
    """A client's reply: MetricRecord 'metrics', one ArrayRecord per named state, ConfigRecord 'meta'."""
    rd = RecordDict({"metrics": MetricRecord({k: float(v) for k, v in metrics.items()})})
    for name, state in (arrays or {}).items():
        rd[name] = to_record(state)
    if meta:
        rd["meta"] = ConfigRecord(meta)
    return rd


# --- the two halves -----------------------------------------------------------------------------


@dataclass
class ClientRuntime:
    """What a client half works with for one message: its data, the shared backbone, its store."""

    cfg: RunConfig
    client_id: int
    rnd: int
    data: ClientData
    backbone: Backbone
    store: ClientStore
    examples: list = field(default_factory=list)  # encoded training examples, aligned with data.train

    def load_state(self) -> ClientState:
        return self.store.load(before_round=self.rnd)


class ClientAlgorithm(ABC):
    """Client half: stateless; whatever must survive rounds goes through `rt.store`."""

    @abstractmethod
    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict: ...

    def setup(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """One-off work before round 1 (FedRouter: embed and cluster the local data)."""
        raise NotImplementedError(f"{type(self).__name__} has no setup step")

    @classmethod
    def clear_caches(cls) -> None:
        """Forget what this client half caches per process: the caches its module registered in
        process_state (a benchmark timing cold work calls it)."""
        process_state.clear(*process_state.names(under=cls.__module__))

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """Default: evaluate the adapter the server sent on this client's test set."""
        scores = score_groups(rt, [(received_adapter(rt, content), np.arange(len(rt.data.test)))])
        return reply(client_metrics(rt, scores))


class ServerAlgorithm(ABC):
    """Server half: owns the global state, builds each client's message, aggregates the replies."""

    # Differential privacy (fedrouter/privacy): whether clients send trained state every round (each round is a
    # release the accountant counts), and how many per-client releases a run makes (`individual_releases`).
    SENDS_UPDATES = True

    def __init__(self, cfg: RunConfig):
        from fedrouter.privacy.server import ServerPrivacy

        self.cfg = cfg
        self.privacy = ServerPrivacy(cfg)

    @classmethod
    def individual_releases(cls, cfg: RunConfig) -> int:
        """Releases of per-client statistics with dp on, each client once (FedRouter's centroids)."""
        return 0

    def fedavg(self, states: Sequence[AdapterState], weights: Sequence[float], ref: AdapterState | None = None,
               expected: float = 1.0, tag: int = 0, keys=None) -> AdapterState:
        """One aggregated group's new state. dp off: FedAvg of the states weighted by `weights` (samples). dp on:
        DP-FedAvg against `ref` (what the group's contributors received; None = the seeded init): every
        contributor's clipped update counts once, plus noise, over `expected` (the group's expected number of
        contributors this round, fixed before the replies). `tag` tells the groups' noise draws apart."""
        if not self.privacy.on:
            return weighted_average(states, weights)
        return self.privacy.average(ref, list(states), expected, tag, keys)

    def configure_setup(self, client_ids: Sequence[int]) -> dict[int, RecordDict] | None:
        """Messages of a one-off step before round 1, or None when the algorithm has none."""
        return None

    def aggregate_setup(self, replies: dict[int, RecordDict]) -> dict[str, float]:
        return {}

    @abstractmethod
    def configure_train(self, rnd: int, client_ids: Sequence[int]) -> dict[int, RecordDict]: ...

    @abstractmethod
    def aggregate_train(self, rnd: int, replies: dict[int, RecordDict]) -> dict[str, float]: ...

    @abstractmethod
    def configure_evaluate(self, rnd: int, client_ids: Sequence[int]) -> dict[int, RecordDict]: ...

    def aggregate_evaluate(self, rnd: int, replies: dict[int, RecordDict]) -> dict[str, float]:
        return combine_clients((metrics_of(c) for c in replies.values()), MetricSelection.of(self.cfg).names)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-able facts worth keeping in the run folder (clusters, routing, groups)."""
        return {}

    @abstractmethod
    def adapters(self) -> dict[str, AdapterState]:
        """Adapters to save at evaluation rounds, by name (e.g. 'global', 'cluster_2')."""

    @abstractmethod
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything needed to resume after the current round: arrays and JSON-able metadata."""

    @abstractmethod
    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None: ...


def received_adapter(rt: ClientRuntime, content: RecordDict) -> AdapterState:
    """The adapter the server sent, or (nothing trained yet: round 1, or the zero-shot evaluation of
    round 0) the shared seeded initialisation, whose B = 0 makes it the base model."""
    if "adapter" in content.array_records:
        return from_record(content["adapter"])
    return rt.backbone.init_state(rt.cfg.seed)


def client_metrics(rt: ClientRuntime, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """A client's evaluation metrics from per-sample scores (overall, per task, seen / unseen tasks)."""
    return summarize_client(scores, [r["task"] for r in rt.data.test], rt.data.unseen_tasks)


def score_predictions(rt: ClientRuntime, preds: Sequence[str], **extra: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample scores of the run's metrics (fedrouter.metrics), aligned with rt.data.test. The
    client keeps each prediction with its reference, the `extra` per-sample values and its task's
    first metric (raw text never leaves it)."""
    test = rt.data.test
    tasks = [r["task"] for r in test]
    selection = MetricSelection.of(rt.cfg)
    scores = score_samples(preds, [r["response"] for r in test], tasks, selection)
    if rt.store is not None:
        rows = []
        for i, (r, p, headline) in enumerate(zip(test, preds, headline_scores(scores, tasks, selection), strict=True)):
            per_sample = {k: float(v[i]) for k, v in extra.items()}
            rows.append({"task": r["task"], "prediction": p, "reference": r["response"], **per_sample, **headline})
        rt.store.save_predictions(rt.rnd, rows)
    return scores


def score_groups(rt: ClientRuntime, groups: Sequence[tuple[AdapterState, np.ndarray]]) -> dict[str, np.ndarray]:
    """Generate each group of test samples with its own adapter (swapped into the one backbone)
    and return the per-sample scores of the run's metrics aligned with rt.data.test."""
    n = len(rt.data.test)
    preds = [""] * n
    groups = [(state, idx) for state, idx in groups if len(idx)]
    rt.backbone.activate("main")
    mode = rt.cfg.generation_batching
    if mode == "auto":
        mode = "mixed" if mixed_batches_pay(rt.backbone, [len(idx) for _, idx in groups], rt.cfg.batch_size_eval) \
            else "grouped"
    if mode == "mixed" and len(groups) > 1:
        # every group's adapter in its own slot; one pass over all test samples, each row with its own
        names = [""] * n
        for j, (state, idx) in enumerate(groups):
            rt.backbone.set_state(state, slot=f"route_{j}")
            for i in idx:
                names[i] = f"route_{j}"
        order = np.concatenate([idx for _, idx in groups])
        outs = generate(rt.backbone, [rt.data.test[i]["instruction"] for i in order], rt.cfg,
                        adapter_names=[names[i] for i in order])
        for i, p in zip(order, outs, strict=True):
            preds[i] = p
    else:
        for state, idx in groups:
            rt.backbone.set_state(state)
            outs = generate(rt.backbone, [rt.data.test[i]["instruction"] for i in idx], rt.cfg)
            for i, p in zip(idx, outs, strict=True):
                preds[i] = p
    return score_predictions(rt, preds)


# --- what the registry's benchmark hooks exchange ------------------------------------------------


@dataclass(frozen=True)
class SyntheticClient:
    """What a client's local work produced, made up instead of computed: the benchmark loads a server
    half with many clients this way, without their data or a model. `centroids` (k x d) and `counts`
    (k): its local clusters of instruction embeddings and their sizes; `adapter`: what it trained
    (any LoRA shapes)."""

    centroids: np.ndarray
    counts: np.ndarray
    adapter: AdapterState | None = None


@dataclass(frozen=True)
class Routing:
    """How a method that routes each test sample to one of several adapters shows its routing (the
    benchmark replays it the reference code's way and compares)."""

    # an evaluation message from its server -> (centroids K x d, the clusters this client may route to)
    router: Callable[[RecordDict], tuple[np.ndarray, np.ndarray]]
    # (the client's store, round) -> the cluster each test sample went to in that round's evaluation
    routed: Callable[[ClientStore, int], np.ndarray]
