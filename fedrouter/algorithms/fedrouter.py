"""FedRouter: local k-means on each client, global k-means of the local centroids on the server,
one LoRA adapter per global cluster, and a router that sends each test sample to the adapter of its
nearest centroid. Talasso et al., "Task-Centric Personalized Federated Fine-Tuning of Language
Models" (arXiv 2604.00050); specification in docs/method.md.

This file holds the method's settings, its client half and its registry line; the server half is in
fedrouter_server.py (it runs only in the ServerApp and meets the client half only through messages),
the report's figures in fedrouter_report.py.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    Routing,
    SyntheticClient,
    client_metrics,
    from_record,
    meta_of,
    register,
    reply,
    score_groups,
    to_record,
)
from fedrouter.algorithms.client_state import ClientState, ClientStore
from fedrouter.algorithms.fedrouter_report import report_plots, report_sections
from fedrouter.algorithms.fedrouter_server import FedRouterServer
from fedrouter.config import AlgorithmSettings, Alias, IntOrAuto, IntRange, RunConfig, register_alias, setting
from fedrouter.privacy.mechanism import clip_rows, noisy_centroids
from fedrouter.privacy.server import noise_multiplier
from fedrouter.routing import (
    FALLBACKS,
    Router,
    RouterOptions,
    accepted,
    client_calibration,
    route,
    router_named,
)
from fedrouter.routing import (
    ROUTERS as ROUTER_MODELS,
)
from fedrouter.steps import cluster
from fedrouter.steps.embed import embed
from fedrouter.steps.train import train_adapter
from fedrouter.utils import process_state
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.fedrouter")

ROUTER_SCOPES = ("local", "global")
EMBEDDINGS = ("base", "sentence")
# The reference launcher's `evaluation_mode`: one value for (router, test_distribution). The router part
# applies to an algorithm with a `router` setting; every algorithm takes the test distribution.
EVALUATION_MODES: dict[str, tuple[str, str]] = {
    "local": ("local", "same"),
    "global": ("global", "all"),
    "data_local_eval_global": ("global", "same"),
    "data_global_eval_local": ("local", "all"),
}


def _resolve_evaluation_mode(mode: str, keys: set[str]) -> dict[str, str]:
    router, tested_on = EVALUATION_MODES[mode]
    return {"test_distribution": tested_on, **({"router": router} if "router" in keys else {})}


register_alias(Alias(
    "evaluation_mode", tuple(EVALUATION_MODES), _resolve_evaluation_mode,
    "the reference launcher's alias of router + test_distribution: local = (router local, test same), global = "
    "(global, all), data_local_eval_global = (global, same), data_global_eval_local = (local, all); a method "
    "without a router takes the test distribution only; a setting it implies that is also given at a "
    "non-default value must agree with it"))


@dataclass(frozen=True)
class FedRouterSettings(AlgorithmSettings):
    n_clusters: IntOrAuto = setting(IntOrAuto("1"), "local clusters per client (k-means on its instruction embeddings); int or auto")
    global_n_clusters: IntOrAuto = setting(IntOrAuto("4"), "global clusters of all local centroids, one adapter each; int or auto")
    k_range: IntRange = setting(IntRange("1,8"), "min,max k tried by auto (min 1: a single-task client can get one cluster); silhouette (rule and diagnostics) starts at 2")
    k_rule: str = setting("gap", "auto's rule: gap (gap statistic with a Gaussian reference, can answer 1; docs/auto_k.md) | silhouette (the paper's; k >= 2)")
    train_all_clusters: bool = setting(False, "train every local cluster each round (default: cluster round mod k, as the paper)")
    router: str = setting("local", "which global clusters a test input may go to: local (those of the client's own clusters) | global (all)")
    router_model: str = setting("lda", "how the router scores the candidates: centroid (nearest centroid, the paper's) | cosine | prototypes | gaussian | lda | head; what each makes a client send: docs/method.md")
    router_shrinkage: float = setting(0.1, "lda: weight of the scaled identity in the pooled within-cluster covariance, in [0, 1]")
    router_accept: float = setting(0.0, "open-set routing: share of the clients' own training inputs each global cluster accepts (e.g. 0.99), calibrated on the clients; an input no candidate accepts goes to `fallback`; 0 = off, every input routed (the paper)")
    fallback: str = setting("base", "where rejected inputs go (router_accept > 0): base (the base model, no adapter) | shared (one adapter every sampled client trains each round on all its data)")
    embedding: str = setting("base", "base (mean-pooled hidden state of the base model over the instruction's tokens) | sentence (sentence-transformers)")
    embedding_layer: str = setting("last", "embedding=base: last (the final, normed hidden state) | middle | a hidden-state index (0 = token embeddings)")
    sentence_model: str = setting("", "sentence-transformers model path; empty = packaged all-MiniLM-L6-v2")
    diagnostics: bool = setting(True, "analysis outputs: clients send per-cluster counts of the true task labels (aggregates, never per-sample labels) for purity, ARI and routing accuracy, and silhouette curves over k_range are computed even with a fixed k; false in a real federation")

    @property
    def routes_by(self) -> Router:
        return router_named(self.router_model)

    @property
    def router_options(self) -> RouterOptions:
        return RouterOptions(shrinkage=self.router_shrinkage)

    @property
    def open_set(self) -> bool:
        return self.router_accept > 0

    @property
    def shared_fallback(self) -> bool:
        return self.open_set and self.fallback == "shared"

    def k_bounds(self) -> tuple[int, int]:
        """The k auto tries with its rule (silhouette cannot score one cluster: it starts at 2)."""
        lo, hi = self.k_range.lo, self.k_range.hi
        return (max(2, lo), hi) if self.k_rule == "silhouette" else (lo, hi)

    def silhouette_bounds(self) -> tuple[int, int]:
        return max(2, self.k_range.lo), self.k_range.hi

    def check(self, run: RunConfig) -> list[str]:
        out = []
        if self.router not in ROUTER_SCOPES:
            out.append(f"router={self.router!r} is not known; allowed: {', '.join(ROUTER_SCOPES)}")
        if self.router_model not in ROUTER_MODELS:
            out.append(f"router_model={self.router_model!r} is not known; allowed: {', '.join(ROUTER_MODELS)}")
        if not 0.0 <= self.router_shrinkage <= 1.0:
            out.append(f"router_shrinkage={self.router_shrinkage} must be in [0, 1]")
        if not 0.0 <= self.router_accept < 1.0:
            out.append(f"router_accept={self.router_accept} must be in [0, 1) (0 = off; e.g. 0.99)")
        if self.fallback not in FALLBACKS:
            out.append(f"fallback={self.fallback!r} is not known; allowed: {', '.join(FALLBACKS)}")
        if self.embedding_layer not in ("last", "middle") and not self.embedding_layer.lstrip("-").isdigit():
            out.append(f"embedding_layer={self.embedding_layer!r} is not known; allowed: last, middle, or an integer "
                       "hidden-state index")
        if self.embedding not in EMBEDDINGS:
            out.append(f"embedding={self.embedding!r} is not known; allowed: {', '.join(EMBEDDINGS)}")
        if self.k_rule not in cluster.K_RULES:
            out.append(f"k_rule={self.k_rule!r} is not known; allowed: {', '.join(cluster.K_RULES)}")
        out += self.k_range.problems("k_range", min_k=1)
        if not out and self.k_rule == "silhouette" and self.silhouette_bounds()[1] < 2:
            out.append(f"k_range={str(self.k_range)!r}: k_rule=silhouette needs a max >= 2 (it cannot score one cluster)")
        out += self.n_clusters.problems("n_clusters") + self.global_n_clusters.problems("global_n_clusters")
        if run.privacy.on:
            out += self.privacy_problems(run)
        if not self.global_n_clusters.auto and not self.n_clusters.auto:
            points = run.num_clients * self.n_clusters.value  # the global k-means clusters every local centroid
            if self.global_n_clusters.value > points:
                out.append(f"global_n_clusters={self.global_n_clusters} is larger than the {points} local centroids "
                           f"to cluster (num_clients={run.num_clients} x n_clusters={self.n_clusters})")
        return out

    def privacy_problems(self, run: RunConfig) -> list[str]:
        """With dp on, only what the privacy layer noises may leave a client: the centroids and shares (once) and
        the round updates (adapters, the routing head)."""
        out = []
        if type(self.routes_by).client_stats is not Router.client_stats:
            plain = ", ".join(n for n, r in ROUTER_MODELS.items() if type(r).client_stats is Router.client_stats)
            out.append(f"router_model={self.router_model!r} sends per-client second moments that dp={run.dp} does not "
                       f"noise; with dp on use one of: {plain}")
        if self.open_set:
            out.append(f"router_accept={self.router_accept}: open-set calibration sends per-client distance quantiles "
                       "every round, which dp does not noise; set router_accept=0 with dp on")
        if self.n_clusters.auto:
            out.append("n_clusters=auto: the chosen k depends on the client's data and is not noised; set n_clusters "
                       "to an integer with dp on")
        return out

    def check_data(self, run: RunConfig, train_sizes: list[int]) -> list[str]:
        if not self.n_clusters.auto and self.n_clusters.value > max(train_sizes):
            return [f"n_clusters={self.n_clusters} is larger than every client's training set (the largest has "
                    f"{max(train_sizes)} samples); a client with fewer samples than n_clusters uses fewer clusters, "
                    "but none can have this many"]
        return []


def _arrays(**named: np.ndarray) -> ArrayRecord:
    return to_record({k: np.asarray(v) for k, v in named.items()})


# --- client half ----------------------------------------------------------------------------------


class FedRouterClient(ClientAlgorithm):
    def setup(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """Embed the training instructions once, cluster them, keep labels private; send centroids,
        per-cluster counts and silhouette scores, plus (with `diagnostics`) per-cluster task counts."""
        st = local_clusters(rt)
        centroids, labels = st.arrays["centroids"], st.arrays["labels"]
        k = len(centroids)
        arrays = {"centroids": centroids, "counts": np.bincount(labels, minlength=k)}
        if rt.cfg.privacy.on:  # the Gaussian mechanism on the centroids and cluster shares, once (docs/privacy.md)
            rng = np.random.default_rng(derive_seed(rt.cfg.seed, rt.client_id, 0xD7))
            arrays["centroids"], arrays["counts"] = noisy_centroids(
                centroids, arrays["counts"] / len(labels), rt.cfg.dp_embedding_clip, noise_multiplier(rt.cfg), rng)
        # the router's own per-local-cluster statistics (aggregates; docs/method.md lists them per router)
        arrays.update({f"router/{name}": np.asarray(v, dtype=np.float32) for name, v in
                       rt.cfg.alg.routes_by.client_stats(st.arrays["embeddings"], labels, k).items()})
        metrics = {"k_local": k, "num_samples": len(labels)}
        metrics.update({f"silhouette/{kk}": s for kk, s in st.meta.get("silhouette", {}).items()})
        meta: dict[str, Any] = {"k_local": k}
        if rt.cfg.alg.diagnostics:
            tasks = list(rt.data.task_names)
            table = cluster.contingency(labels, [r["task"] for r in rt.data.train], tasks, k)
            arrays["task_counts"] = table
            metrics.update({"local_purity": cluster.purity(table), "local_ari": cluster.ari(table)})
            meta["tasks"] = tasks  # the columns of task_counts (names only, with the diagnostics)
        return _setup_reply(arrays, metrics, meta)

    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        labels = local_clusters(rt).arrays["labels"]
        trained: dict[int, tuple[dict[str, np.ndarray], int]] = {}
        losses = []
        rt.backbone.activate("main")
        for c in meta_of(content)["clusters"]:
            key = f"adapter_{c}"
            start = from_record(content[key]) if key in content.array_records else rt.backbone.init_state(rt.cfg.seed)
            rt.backbone.set_state(start)
            idx = np.flatnonzero(labels == c)
            if len(idx) == 0:  # nothing to learn from: send nothing for this cluster
                log.warning("client %d: local cluster %d is empty; not trained in round %d", rt.client_id, c, rt.rnd)
                continue
            res = train_adapter(rt.backbone, [rt.examples[i] for i in idx], rt.cfg, rt.cfg.lr_at(rt.rnd),
                                derive_seed(rt.cfg.seed, rt.client_id, rt.rnd, c))
            trained[c] = rt.backbone.get_state(), res.num_samples
            losses.append(res.loss)
        content_out = _train_reply(trained, float(np.mean(losses)) if losses else float("nan"))
        meta = meta_of(content)
        if meta.get("shared"):  # the open-set fallback adapter: trained on all the client's data
            start = from_record(content["adapter_shared"]) if "adapter_shared" in content.array_records \
                else rt.backbone.init_state(rt.cfg.seed)
            rt.backbone.set_state(start)
            res = train_adapter(rt.backbone, rt.examples, rt.cfg, rt.cfg.lr_at(rt.rnd),
                                derive_seed(rt.cfg.seed, rt.client_id, rt.rnd, 0x5A))
            content_out["adapter_shared"] = to_record(rt.backbone.get_state())
            content_out["metrics"]["num_samples/shared"] = res.num_samples
        if "router" in content.array_records or "open_set" in content.array_records:
            _router_round(rt, content, content_out, labels)
        return content_out

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """Route every test sample to the nearest candidate global centroid, then generate each
        routed group with its cluster's adapter (one backbone, adapters swapped in place)."""
        state = from_record(content["router"])
        candidates = np.asarray(meta_of(content)["candidates"], dtype=np.int64)
        emb = test_embeddings(rt)
        routed, _ = route(rt.cfg.alg.routes_by, state, emb, candidates)
        if "open_set" in content.array_records:  # an input its chosen cluster does not accept goes to the fallback
            region = from_record(content["open_set"])
            routed = np.where(accepted(region["centroids"], emb, routed, region["thresholds"]), routed, FALLBACK)
        groups = []
        for g in np.unique(routed):
            key = "adapter_shared" if g == FALLBACK else f"adapter_{g}"
            adapter = from_record(content[key]) if key in content.array_records else rt.backbone.init_state(rt.cfg.seed)
            groups.append((adapter, np.flatnonzero(routed == g)))
        tasks = [r["task"] for r in rt.data.test]
        metrics = client_metrics(rt, score_groups(rt, groups))
        if rt.cfg.alg.diagnostics:  # routed-sample counts per (cluster or fallback, task), for the routing table
            for (g, task), n in Counter(zip(routed.tolist(), tasks, strict=True)).items():
                metrics[f"route/{'fallback' if g == FALLBACK else g}/{task}"] = float(n)
        rt.store.save_eval(rt.rnd, {"embeddings": emb, "routed": routed}, {"tasks": tasks})
        return reply(metrics)


FALLBACK = -1  # the routed "cluster" of an input no candidate accepts


def _router_round(rt: ClientRuntime, content: RecordDict, out: RecordDict, labels: np.ndarray) -> None:
    """A trained router (the head) in the training message is improved on the client's embeddings labelled with
    their global clusters and sent back; with open-set routing on (the global centroids in the message), the
    client's calibration (per global cluster: the acceptance score `router_accept` of its training inputs
    reach, and their number) rides on the reply's metrics."""
    opts: FedRouterSettings = rt.cfg.alg
    emb = local_clusters(rt).arrays["embeddings"]
    targets = np.asarray(meta_of(content)["mapping"], dtype=np.int64)[labels]
    if "router" in content.array_records:
        new = opts.routes_by.client_train(from_record(content["router"]), emb, targets,
                                          derive_seed(rt.cfg.seed, rt.client_id, rt.rnd, 0x4E), opts.router_options)
        out["router"] = to_record(new)
        out["metrics"]["num_samples/router"] = len(emb)
    if "open_set" in content.array_records:
        centroids = from_record(content["open_set"])["centroids"]
        for g, (q, n) in client_calibration(centroids, emb, targets, opts.router_accept).items():
            out["metrics"][f"calibration/{g}/score"] = float(q)
            out["metrics"][f"calibration/{g}/n"] = int(n)


def _setup_reply(arrays: dict[str, np.ndarray], metrics: dict[str, float], meta: dict[str, Any]) -> RecordDict:
    """The setup reply: the local clusters' arrays (centroids, counts, with the diagnostics task_counts)
    in one record, and the metrics and metadata."""
    content = reply(metrics, meta=meta)
    content["centroids"] = _arrays(**arrays)
    return content


def _train_reply(trained: dict[int, tuple[dict[str, np.ndarray], int]], loss: float) -> RecordDict:
    """The training reply: local cluster -> (its adapter, samples trained on), and the mean loss."""
    metrics = {f"num_samples/{c}": n for c, (_, n) in trained.items()}
    metrics["loss"] = loss
    return reply(metrics, {f"adapter_{c}": state for c, (state, _) in trained.items()})


def evaluation_router(content: RecordDict) -> tuple[np.ndarray, np.ndarray]:
    """What an evaluation message routes by: the global centroids (router_model=centroid) and this client's
    candidate clusters."""
    return from_record(content["router"])["centroids"], np.asarray(meta_of(content)["candidates"], dtype=np.int64)


def routed_samples(store: ClientStore, rnd: int) -> np.ndarray:
    """The global cluster each test sample went to in the client's evaluation of round `rnd`."""
    return store.load_eval(rnd)[0]["routed"]


def synthetic_reply(kind: str, content: RecordDict, client: SyntheticClient) -> RecordDict:
    """The client half's reply to a setup or training message, from made-up local clusters and adapter:
    setup sends the centroids, counts and router statistics (no diagnostics); training sends the adapter for every local
    cluster the message asks for, with that cluster's count."""
    if kind == "setup":
        k = len(client.centroids)
        # every router's statistics, as if each local cluster were its centroid alone (no spread)
        stats = {f"router/{name}": v for r in ROUTER_MODELS.values()
                 for name, v in r.client_stats(client.centroids, np.arange(k), k).items()}
        return _setup_reply({"centroids": client.centroids, "counts": client.counts, **stats},
                            {"k_local": k, "num_samples": int(client.counts.sum())}, {"k_local": k})
    if kind == "train":
        return _train_reply({c: (client.adapter, int(client.counts[c])) for c in meta_of(content)["clusters"]}, 1.0)
    raise ValueError(f"no synthetic reply to a {kind!r} message")


def local_clusters(rt: ClientRuntime) -> ClientState:
    """The client's local clustering, computed at its first message and kept in its own store."""
    st = rt.store.load(before_round=1)
    if "labels" in st.arrays and "embeddings" in st.arrays:
        return st
    texts = [r["instruction"] for r in rt.data.train]
    emb = embed_instructions(rt.backbone, texts, rt.cfg)
    seed = derive_seed(rt.cfg.seed, rt.client_id, 0xC1)
    # The silhouette curve is kept for every run (the paper's Figure 7), not only when choosing k.
    opts: FedRouterSettings = rt.cfg.alg
    scores: dict[int, float] | None = None
    if opts.n_clusters.auto:
        k, rule_scores = cluster.choose_k(emb, *opts.k_bounds(), seed=seed, rule=opts.k_rule)
        log.info("client %d: %s %s -> k=%d", rt.client_id, opts.k_rule,
                 {kk: round(s, 3) for kk, s in rule_scores.items()}, k)
        scores = rule_scores if opts.k_rule == "silhouette" else None
    else:
        k = opts.n_clusters.value
    if scores is None:  # the curve is a diagnostic then (the paper's Figure 7): computed only when asked for
        scores = cluster.silhouette_curve(emb, *opts.silhouette_bounds(), seed=seed) if opts.diagnostics else {}
    meta: dict[str, Any] = {"silhouette": {str(kk): s for kk, s in scores.items()}}
    distinct = len(np.unique(emb, axis=0))  # identical inputs embed identically: k-means needs k distinct points
    if k > distinct:
        log.warning("client %d has %d samples (%d distinct) < n_clusters=%d; using k=%d",
                    rt.client_id, len(texts), distinct, k, distinct)
        k = distinct
    centroids, labels = cluster.kmeans(emb, k, seed)
    # the training embeddings stay in the client's own store (the router's statistics and calibration use them)
    st = ClientState(0, {"centroids": centroids, "labels": labels, "embeddings": emb}, meta)
    rt.store.save(st)
    return st


def embed_instructions(backbone, texts: list[str], cfg: RunConfig) -> np.ndarray:
    """Training and test instructions alike; with dp on, each embedding clipped to norm dp_embedding_clip (the
    centroids' sensitivity rests on it, and test inputs must live on the same scale)."""
    opts: FedRouterSettings = cfg.alg
    emb = embed(backbone, texts, cfg, kind=opts.embedding, sentence_model=opts.sentence_model,
                layer=opts.embedding_layer)
    return clip_rows(emb, cfg.dp_embedding_clip) if cfg.privacy.on else emb


def test_embeddings(rt: ClientRuntime) -> np.ndarray:
    return _test_embeddings(rt.cfg, rt.client_id, rt.backbone)


@process_state.cached(maxsize=64)
def _test_embeddings(cfg, client_id: int, backbone) -> np.ndarray:
    # The frozen base model and the test set never change within a run: embed once per process.
    from fedrouter.data.federated import client_data

    return embed_instructions(backbone, [r["instruction"] for r in client_data(cfg, client_id).test], cfg)


ALGORITHM = register(Algorithm("fedrouter", FedRouterServer, FedRouterClient, FedRouterSettings, aliases=("clustered",),
                               summary="per-task adapters via local + global clustering, routed inference",
                               proposed=True, report_plots=report_plots, report_sections=report_sections, synthetic_reply=synthetic_reply,
                               routing=Routing(evaluation_router, routed_samples)))
