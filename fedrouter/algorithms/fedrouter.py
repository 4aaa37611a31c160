"""FedRouter: local k-means on each client, global k-means of the local centroids on the server,
one LoRA adapter per global cluster, and a router that sends each test sample to the adapter of its
nearest centroid. Talasso et al., "Task-Centric Personalized Federated Fine-Tuning of Language
Models" (arXiv 2604.00050); specification in docs/method.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    Routing,
    ServerAlgorithm,
    SyntheticClient,
    client_metrics,
    from_record,
    meta_of,
    metrics_of,
    register,
    reply,
    score_groups,
    to_record,
)
from fedrouter.algorithms.client_state import ClientState, ClientStore
from fedrouter.algorithms.fedrouter_report import report_plots
from fedrouter.config import AlgorithmSettings, Alias, IntOrAuto, IntRange, RunConfig, register_alias, setting
from fedrouter.metrics import MetricSelection, combine_clients
from fedrouter.steps import cluster
from fedrouter.steps.aggregate import weighted_average
from fedrouter.steps.embed import embed
from fedrouter.steps.train import train_adapter
from fedrouter.utils import process_state
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.fedrouter")

ROUTERS = ("local", "global")
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
    router: str = setting("local", "local (nearest centroid among the global clusters of the client's own clusters) | global (among all)")
    embedding: str = setting("base", "base (mean last hidden state of the base model) | sentence (sentence-transformers)")
    sentence_model: str = setting("", "sentence-transformers model path; empty = packaged all-MiniLM-L6-v2")
    diagnostics: bool = setting(True, "analysis outputs: clients send per-cluster counts of the true task labels (aggregates, never per-sample labels) for purity, ARI and routing accuracy, and silhouette curves over k_range are computed even with a fixed k; false in a real federation")

    def k_bounds(self) -> tuple[int, int]:
        """The k auto tries with its rule (silhouette cannot score one cluster: it starts at 2)."""
        lo, hi = self.k_range.lo, self.k_range.hi
        return (max(2, lo), hi) if self.k_rule == "silhouette" else (lo, hi)

    def silhouette_bounds(self) -> tuple[int, int]:
        return max(2, self.k_range.lo), self.k_range.hi

    def check(self, run: RunConfig) -> list[str]:
        out = []
        if self.router not in ROUTERS:
            out.append(f"router={self.router!r} is not known; allowed: {', '.join(ROUTERS)}")
        if self.embedding not in EMBEDDINGS:
            out.append(f"embedding={self.embedding!r} is not known; allowed: {', '.join(EMBEDDINGS)}")
        if self.k_rule not in cluster.K_RULES:
            out.append(f"k_rule={self.k_rule!r} is not known; allowed: {', '.join(cluster.K_RULES)}")
        out += self.k_range.problems("k_range", min_k=1)
        if not out and self.k_rule == "silhouette" and self.silhouette_bounds()[1] < 2:
            out.append(f"k_range={str(self.k_range)!r}: k_rule=silhouette needs a max >= 2 (it cannot score one cluster)")
        out += self.n_clusters.problems("n_clusters") + self.global_n_clusters.problems("global_n_clusters")
        if not self.global_n_clusters.auto and not self.n_clusters.auto:
            points = run.num_clients * self.n_clusters.value  # the global k-means clusters every local centroid
            if self.global_n_clusters.value > points:
                out.append(f"global_n_clusters={self.global_n_clusters} is larger than the {points} local centroids "
                           f"to cluster (num_clients={run.num_clients} x n_clusters={self.n_clusters})")
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
        return _train_reply(trained, float(np.mean(losses)))

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """Route every test sample to the nearest candidate global centroid, then generate each
        routed group with its cluster's adapter (one backbone, adapters swapped in place)."""
        centroids, candidates = evaluation_router(content)
        emb = test_embeddings(rt)
        routed = cluster.nearest(emb, centroids, candidates)
        groups = []
        for g in np.unique(routed):
            key = f"adapter_{g}"
            state = from_record(content[key]) if key in content.array_records else rt.backbone.init_state(rt.cfg.seed)
            groups.append((state, np.flatnonzero(routed == g)))
        tasks = [r["task"] for r in rt.data.test]
        metrics = client_metrics(rt, score_groups(rt, groups))
        if rt.cfg.alg.diagnostics:  # routed-sample counts per (cluster, task), for routing accuracy
            names = list(rt.data.task_names)
            table = cluster.contingency(routed, tasks, names, len(centroids))
            for g, t in zip(*np.nonzero(table), strict=True):
                metrics[f"route/{g}/{names[t]}"] = float(table[g, t])
        rt.store.save_eval(rt.rnd, {"embeddings": emb, "routed": routed}, {"tasks": tasks})
        return reply(metrics)


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
    """What an evaluation message routes by: the global centroids and this client's candidate clusters."""
    return from_record(content["router"])["centroids"], np.asarray(meta_of(content)["candidates"], dtype=np.int64)


def routed_samples(store: ClientStore, rnd: int) -> np.ndarray:
    """The global cluster each test sample went to in the client's evaluation of round `rnd`."""
    return store.load_eval(rnd)[0]["routed"]


def synthetic_reply(kind: str, content: RecordDict, client: SyntheticClient) -> RecordDict:
    """The client half's reply to a setup or training message, from made-up local clusters and adapter:
    setup sends the centroids and counts (no diagnostics); training sends the adapter for every local
    cluster the message asks for, with that cluster's count."""
    if kind == "setup":
        k = len(client.centroids)
        return _setup_reply({"centroids": client.centroids, "counts": client.counts},
                            {"k_local": k, "num_samples": int(client.counts.sum())}, {"k_local": k})
    if kind == "train":
        return _train_reply({c: (client.adapter, int(client.counts[c])) for c in meta_of(content)["clusters"]}, 1.0)
    raise ValueError(f"no synthetic reply to a {kind!r} message")


def local_clusters(rt: ClientRuntime) -> ClientState:
    """The client's local clustering, computed at its first message and kept in its own store."""
    st = rt.store.load(before_round=1)
    if "labels" in st.arrays:
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
    st = ClientState(0, {"centroids": centroids, "labels": labels}, meta)
    rt.store.save(st)
    return st


def embed_instructions(backbone, texts: list[str], cfg: RunConfig) -> np.ndarray:
    opts: FedRouterSettings = cfg.alg
    return embed(backbone, texts, cfg, kind=opts.embedding, sentence_model=opts.sentence_model)


def test_embeddings(rt: ClientRuntime) -> np.ndarray:
    return _test_embeddings(rt.cfg, rt.client_id, rt.backbone)


@process_state.cached(maxsize=64)
def _test_embeddings(cfg, client_id: int, backbone) -> np.ndarray:
    # The frozen base model and the test set never change within a run: embed once per process.
    from fedrouter.data.federated import client_data

    return embed_instructions(backbone, [r["instruction"] for r in client_data(cfg, client_id).test], cfg)


# --- server half ----------------------------------------------------------------------------------


class FedRouterServer(ServerAlgorithm):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.centroids: np.ndarray | None = None  # K x d global centroids
        self.adapters_by_cluster: dict[int, dict[str, np.ndarray]] = {}  # untrained clusters absent
        self.mapping: dict[int, list[int]] = {}  # client -> global cluster of each local cluster
        self.diag: dict[str, Any] = {"routing_accuracy": {}}
        self.task_table: np.ndarray | None = None  # K x tasks: training samples per global cluster
        self.tasks: list[str] = []  # the columns of task_table (sent by the clients with the diagnostics)

    # setup: global clustering of every client's local centroids
    def configure_setup(self, client_ids):
        return {cid: RecordDict() for cid in client_ids}

    def aggregate_setup(self, replies):
        cids = sorted(replies)
        local = {cid: from_record(replies[cid]["centroids"]) for cid in cids}
        points = np.concatenate([local[c]["centroids"] for c in cids])
        seed = derive_seed(self.cfg.seed, 0x6C)
        opts: FedRouterSettings = self.cfg.alg
        scores: dict[int, float] | None = None
        if opts.global_n_clusters.auto:
            k, rule_scores = cluster.choose_k(points, *opts.k_bounds(), seed=seed, rule=opts.k_rule)
            log.info("global %s %s -> K=%d", opts.k_rule, {kk: round(s, 3) for kk, s in rule_scores.items()}, k)
            scores = rule_scores if opts.k_rule == "silhouette" else None
            self.diag["global_k_rule"] = {"rule": opts.k_rule, "scores": {str(kk): s for kk, s in rule_scores.items()}}
        else:
            k = min(opts.global_n_clusters.value, len(points))
        if scores is None:  # a diagnostic (Figure 8): at 1,000 clients it costs 7 k-means fits
            scores = cluster.silhouette_curve(points, *opts.silhouette_bounds(), seed=seed) if opts.diagnostics else {}
        self.centroids, _ = cluster.kmeans(points, k, seed)
        for cid in cids:
            self.mapping[cid] = [int(x) for x in cluster.nearest(local[cid]["centroids"], self.centroids)]
        m = {cid: metrics_of(replies[cid]) for cid in cids}
        self.diag.update({
            "global_k": k,
            "global_silhouette": {str(kk): s for kk, s in scores.items()},
            "mapping": {str(c): self.mapping[c] for c in cids},
            "k_local": {str(c): int(m[c]["k_local"]) for c in cids},
            "local_silhouette": {str(c): {k_.split("/")[1]: v for k_, v in m[c].items() if k_.startswith("silhouette/")}
                                 for c in cids},
        })
        out: dict[str, float] = {}
        if all("task_counts" in local[c] for c in cids):  # diagnostics: clients sent task-label counts
            self.tasks = list(meta_of(replies[cids[0]])["tasks"])
            self.task_table = np.zeros((k, len(self.tasks)), dtype=np.int64)
            for cid in cids:
                for lc, gc in enumerate(self.mapping[cid]):
                    self.task_table[gc] += local[cid]["task_counts"][lc]
            self.diag.update({
                "local_purity": {str(c): m[c]["local_purity"] for c in cids},
                "local_ari": {str(c): m[c]["local_ari"] for c in cids},
                "mean_local_purity": float(np.mean([m[c]["local_purity"] for c in cids])),
                "tasks": self.tasks,
                "global_task_table": self.task_table.tolist(),
                "global_purity": cluster.purity(self.task_table),
                "global_ari": cluster.ari(self.task_table),
            })
            out = {"global_purity": self.diag["global_purity"], "global_ari": self.diag["global_ari"]}
            log.info("global clustering: K=%d, purity %.3f, ARI %.3f, mean local purity %.3f",
                     k, self.diag["global_purity"], self.diag["global_ari"], self.diag["mean_local_purity"])
        log.info("global clustering: K=%d; client -> global cluster of each local cluster: %s", k, self.mapping)
        return out

    def _clusters_to_train(self, rnd: int, cid: int) -> list[int]:
        k_local = len(self.mapping[cid])
        return list(range(k_local)) if self.cfg.alg.train_all_clusters else [rnd % k_local]

    def configure_train(self, rnd, client_ids):
        out = {}
        for cid in client_ids:
            if cid not in self.mapping:
                log.warning("round %d: client %d has no local clusters (its setup failed); skipped", rnd, cid)
                continue
            clusters = self._clusters_to_train(rnd, cid)
            content = RecordDict({"meta": ConfigRecord({"clusters": clusters})})
            for c in clusters:
                g = self.mapping[cid][c]
                if g in self.adapters_by_cluster:
                    content[f"adapter_{c}"] = to_record(self.adapters_by_cluster[g])
            out[cid] = content
        return out

    def aggregate_train(self, rnd, replies):
        """FedAvg within each global cluster, weighted by samples trained on; a cluster with no
        contributor this round keeps its adapter."""
        groups: dict[int, list[tuple[dict, float]]] = {}
        for cid, content in replies.items():
            metrics = metrics_of(content)
            for c in self._clusters_to_train(rnd, cid):
                if f"adapter_{c}" not in content.array_records:  # the client had no samples for it
                    continue
                g = self.mapping[cid][c]
                groups.setdefault(g, []).append((from_record(content[f"adapter_{c}"]), metrics[f"num_samples/{c}"]))
        for g, items in groups.items():
            self.adapters_by_cluster[g] = weighted_average([s for s, _ in items], [w for _, w in items])
        return {f"contributors/{g}": float(len(v)) for g, v in sorted(groups.items())}

    def configure_evaluate(self, rnd, client_ids):
        out = {}
        for cid in client_ids:
            if cid not in self.mapping:
                continue
            if self.cfg.alg.router == "global":
                candidates = list(range(len(self.centroids)))
            else:
                candidates = sorted(set(self.mapping[cid]))
            content = RecordDict({"router": _arrays(centroids=self.centroids),
                                  "meta": ConfigRecord({"candidates": candidates})})
            for g in candidates:
                if g in self.adapters_by_cluster:
                    content[f"adapter_{g}"] = to_record(self.adapters_by_cluster[g])
            out[cid] = content
        return out

    def aggregate_evaluate(self, rnd, replies):
        metrics = [metrics_of(c) for c in replies.values()]
        out = combine_clients(metrics, MetricSelection.of(self.cfg).names)
        if self.task_table is None:  # diagnostics off: no task labels, no routing accuracy
            return out
        dom = cluster.dominant(self.task_table)
        # A task no client trained on (a zero column) has no right cluster: where its samples went is
        # reported instead of counted as routing errors.
        unseen = {t for j, t in enumerate(self.tasks) if self.task_table[:, j].sum() == 0}
        right = total = 0.0
        where: dict[str, dict[str, float]] = {}
        for m in metrics:
            for key, count in m.items():
                if key.startswith("route/"):
                    _, g, task = key.split("/")
                    if task in unseen:
                        where.setdefault(task, {}).setdefault(g, 0.0)
                        where[task][g] += count
                        continue
                    total += count
                    right += count if dom[int(g)] == self.tasks.index(task) else 0.0
        out["routing_accuracy"] = right / total if total else 0.0
        self.diag["routing_accuracy"][str(rnd)] = out["routing_accuracy"]
        log.info("round %d: routing accuracy %.3f on seen tasks (%s router)", rnd, out["routing_accuracy"],
                 self.cfg.alg.router)
        if where:
            table = {t: dict(sorted(where[t].items(), key=lambda kv: int(kv[0]))) for t in sorted(where)}
            self.diag.setdefault("unseen_routing", {})[str(rnd)] = table
            for t, counts in table.items():
                log.info("round %d: unseen task %s routed to global clusters %s (cluster -> its training tasks: %s)",
                         rnd, t, {g: int(c) for g, c in counts.items()},
                         {g: self.tasks[dom[int(g)]] for g in counts})
        return out

    def diagnostics(self):
        return self.diag

    def adapters(self):
        return {f"cluster_{g}": s for g, s in sorted(self.adapters_by_cluster.items())}

    def state_dict(self):
        arrays = {"centroids": self.centroids}
        if self.task_table is not None:
            arrays["task_table"] = self.task_table
        for g, state in self.adapters_by_cluster.items():
            arrays.update({f"cluster_{g}/{k}": v for k, v in state.items()})
        return arrays, {"mapping": {str(c): m for c, m in self.mapping.items()}, "diag": self.diag}

    def load_state_dict(self, arrays, meta):
        self.centroids, self.task_table = arrays.pop("centroids"), arrays.pop("task_table", None)
        self.adapters_by_cluster = {}
        for key, value in arrays.items():
            head, name = key.split("/", 1)
            self.adapters_by_cluster.setdefault(int(head.split("_")[1]), {})[name] = value
        self.mapping = {int(c): m for c, m in meta["mapping"].items()}
        self.diag = meta["diag"]
        self.tasks = list(self.diag.get("tasks", []))


ALGORITHM = register(Algorithm("fedrouter", FedRouterServer, FedRouterClient, FedRouterSettings, aliases=("clustered",),
                               summary="per-task adapters via local + global clustering, routed inference",
                               proposed=True, report_plots=report_plots, synthetic_reply=synthetic_reply,
                               routing=Routing(evaluation_router, routed_samples)))
