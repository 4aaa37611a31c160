"""What every algorithm implements (a server half and a client half), the registry, and record helpers."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedrouter.config import AlgorithmSettings
from fedrouter.steps.batching import mixed_batches_pay
from fedrouter.steps.evaluate import combine_clients, rouge, summarize_client
from fedrouter.steps.generate import generate
from fedrouter.utils import process_state

if TYPE_CHECKING:
    from fedrouter.algorithms.client_state import ClientState, ClientStore
    from fedrouter.config import RunConfig
    from fedrouter.data.splits import ClientData
    from fedrouter.models.backbone import AdapterState, Backbone

# --- records ------------------------------------------------------------------------------------


LAYOUT = "_layout"  # in a packed record: JSON [[name, dtype, shape], ...] as uint8


def to_record(state: AdapterState) -> ArrayRecord:
    """The named arrays as one ArrayRecord, packed: one flat array per dtype plus a small layout array.
    The values are the same; what changes is the number of objects on the wire. Flower's Deployment
    Engine moves each array of a message as its own object with its own HTTP requests (SuperLink ->
    SuperNode -> ClientApp process): a LoRA adapter is a hundred or more tensors, a message with several
    adapters hundreds, and packing makes each a handful (docs/benchmark.md has the pull times)."""
    arrays = {k: np.asarray(v) for k, v in state.items()}
    if len(arrays) < 2:
        return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    layout, groups = [], {}
    for name, a in arrays.items():
        layout.append([name, a.dtype.str, list(a.shape)])
        groups.setdefault(a.dtype.str, []).append(a.reshape(-1))
    record = {f"_packed{dtype}": Array(np.concatenate(parts)) for dtype, parts in groups.items()}
    record[LAYOUT] = Array(np.frombuffer(json.dumps(layout).encode(), dtype=np.uint8).copy())
    return ArrayRecord(record)


def from_record(record: ArrayRecord) -> AdapterState:
    if LAYOUT not in record:
        return {k: v.numpy() for k, v in record.items()}
    layout = json.loads(record[LAYOUT].numpy().tobytes().decode())
    flat = {k: v.numpy() for k, v in record.items() if k != LAYOUT}
    offsets = dict.fromkeys({dtype for _, dtype, _ in layout}, 0)
    out = {}
    for name, dtype, shape in layout:
        n = int(np.prod(shape, dtype=np.int64))
        start = offsets[dtype]
        out[name] = flat[f"_packed{dtype}"][start:start + n].reshape(shape)
        offsets[dtype] = start + n
    return out


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

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

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
        return combine_clients(metrics_of(c) for c in replies.values())

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
    """A client's evaluation metrics from per-sample ROUGE (overall, per task, seen / unseen tasks)."""
    return summarize_client(scores, [r["task"] for r in rt.data.test], rt.data.unseen_tasks)


def score_groups(rt: ClientRuntime, groups: Sequence[tuple[AdapterState, np.ndarray]]) -> dict[str, np.ndarray]:
    """Generate each group of test samples with its own adapter (swapped into the one backbone)
    and return per-sample ROUGE aligned with rt.data.test."""
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
    refs = [r["response"] for r in rt.data.test]
    scores = rouge(preds, refs)
    if rt.store is not None:
        # Kept on the client for inspection (raw text never leaves it).
        rt.store.save_predictions(rt.rnd, [{"task": r["task"], "prediction": p, "reference": r["response"],
                                            "rouge1": float(s)} for r, p, s in zip(rt.data.test, preds, scores["rouge1"], strict=True)])
    return scores


# --- registry -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Algorithm:
    """A registry entry: the algorithm's two halves, its own settings class, and optional hooks that
    the report and the benchmark call instead of naming an algorithm."""

    name: str
    server: type[ServerAlgorithm]
    client: type[ClientAlgorithm]
    settings: type[AlgorithmSettings] = AlgorithmSettings
    aliases: tuple[str, ...] = ()
    summary: str = ""
    # The method the report compares every other one against (the paper's proposal); one at most.
    proposed: bool = False
    # Report hook: extra figures from this method's run folders, `(runs, out_dir) -> paths written`,
    # where runs are (scenario, seed, run folder) of every completed run of the method.
    report_plots: Callable[[list[tuple[str, int, Path]], Path], list[Path]] | None = None
    # Benchmark hook: the reply this method's client half sends to a "setup" or "train" message of its
    # server had its local work produced the given values, `(kind, message, SyntheticClient) -> reply`
    # (the server at 1,000 clients).
    synthetic_reply: Callable[[str, RecordDict, SyntheticClient], RecordDict] | None = None
    # Benchmark hook, for methods that route test samples to adapters: their routing.
    routing: Routing | None = None


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    for key in (algorithm.name, *algorithm.aliases):
        if key in _REGISTRY:
            raise ValueError(f"algorithm name {key!r} is already registered")
    if algorithm.proposed and any(a.proposed for a in _REGISTRY.values()):
        raise ValueError(f"{algorithm.name}: only one algorithm can be the proposed one")
    for key in (algorithm.name, *algorithm.aliases):
        _REGISTRY[key] = algorithm
    return algorithm


def algorithms() -> list[Algorithm]:
    """Every registered algorithm once, in registration order (the report's column order)."""
    _load_builtin_algorithms()
    return list(dict.fromkeys(_REGISTRY.values()))


def known_algorithms() -> list[str]:
    _load_builtin_algorithms()
    return sorted(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    _load_builtin_algorithms()
    if name not in _REGISTRY:
        raise ValueError(f"fed_alg={name!r} is not known; allowed: {', '.join(known_algorithms())}")
    return _REGISTRY[name]


def default_algorithm() -> str:
    """The algorithm a run uses when fed_alg is not set: the proposed one."""
    return next(a.name for a in algorithms() if a.proposed)


def _load_builtin_algorithms() -> None:
    # Importing the package registers every algorithm module it lists.
    import fedrouter.algorithms  # noqa: F401
