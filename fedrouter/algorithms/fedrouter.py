"""FedRouter: local k-means on each client, global k-means of the local centroids on the server,
one LoRA adapter per global cluster, and a router that sends each test sample to the adapter of its
nearest centroid. Talasso et al., "Task-Centric Personalized Federated Fine-Tuning of Language
Models" (arXiv 2604.00050); specification in shared/docs/ALGORITHMS.md.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from fedrouter.algorithms.base import (
    Algorithm,
    ClientAlgorithm,
    ClientRuntime,
    ServerAlgorithm,
    combine_clients,
    from_record,
    meta_of,
    metrics_of,
    register,
    reply,
    score_groups,
    to_record,
)
from fedrouter.algorithms.client_state import ClientState
from fedrouter.data.builtin import TASKS
from fedrouter.steps import cluster
from fedrouter.steps.aggregate import weighted_average
from fedrouter.steps.embed import embed
from fedrouter.steps.evaluate import summarize_client
from fedrouter.steps.train import train_adapter
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.fedrouter")


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
        if rt.cfg.diagnostics:
            table = cluster.contingency(labels, [r["task"] for r in rt.data.train], list(TASKS), k)
            arrays["task_counts"] = table
            metrics.update({"local_purity": cluster.purity(table), "local_ari": cluster.ari(table)})
        content = reply(metrics, meta={"k_local": k})
        content["centroids"] = _arrays(**arrays)
        return content

    def train(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        labels = local_clusters(rt).arrays["labels"]
        metrics: dict[str, float] = {}
        adapters = {}
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
            adapters[key] = rt.backbone.get_state()
            metrics[f"num_samples/{c}"] = res.num_samples
            losses.append(res.loss)
        metrics["loss"] = float(np.mean(losses))
        return reply(metrics, adapters)

    def evaluate(self, rt: ClientRuntime, content: RecordDict) -> RecordDict:
        """Route every test sample to the nearest candidate global centroid, then generate each
        routed group with its cluster's adapter (one backbone, adapters swapped in place)."""
        centroids = from_record(content["router"])["centroids"]
        candidates = np.asarray(meta_of(content)["candidates"], dtype=np.int64)
        emb = test_embeddings(rt)
        routed = cluster.nearest(emb, centroids, candidates)
        groups = []
        for g in np.unique(routed):
            key = f"adapter_{g}"
            state = from_record(content[key]) if key in content.array_records else rt.backbone.init_state(rt.cfg.seed)
            groups.append((state, np.flatnonzero(routed == g)))
        tasks = [r["task"] for r in rt.data.test]
        metrics = summarize_client(score_groups(rt, groups), tasks)
        if rt.cfg.diagnostics:  # routed-sample counts per (cluster, task), for routing accuracy
            table = cluster.contingency(routed, tasks, list(TASKS), len(centroids))
            for g, t in zip(*np.nonzero(table), strict=True):
                metrics[f"route/{g}/{TASKS[t]}"] = float(table[g, t])
        rt.store.save_eval(rt.rnd, {"embeddings": emb, "routed": routed}, {"tasks": tasks})
        return reply(metrics)


def local_clusters(rt: ClientRuntime) -> ClientState:
    """The client's local clustering, computed at its first message and kept in its own store."""
    st = rt.store.load(before_round=1)
    if "labels" in st.arrays:
        return st
    texts = [r["instruction"] for r in rt.data.train]
    emb = embed(rt.backbone, texts, rt.cfg)
    seed = derive_seed(rt.cfg.seed, rt.client_id, 0xC1)
    # The silhouette curve is kept for every run (the paper's Figure 7), not only when choosing k.
    if rt.cfg.n_clusters == "auto":
        k, scores = cluster.choose_k(emb, *rt.cfg.k_bounds(), seed=seed)
        log.info("client %d: silhouette %s -> k=%d", rt.client_id, {kk: round(s, 3) for kk, s in scores.items()}, k)
    else:  # the curve is a diagnostic then (the paper's Figure 7): computed only when asked for
        k = int(rt.cfg.n_clusters)
        scores = cluster.silhouette_curve(emb, *rt.cfg.k_bounds(), seed=seed) if rt.cfg.diagnostics else {}
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


def test_embeddings(rt: ClientRuntime) -> np.ndarray:
    return _test_embeddings(rt.cfg, rt.client_id, rt.backbone)


@lru_cache(maxsize=64)
def _test_embeddings(cfg, client_id: int, backbone) -> np.ndarray:
    # The frozen base model and the test set never change within a run: embed once per process.
    from fedrouter.data.federated import client_data

    return embed(backbone, [r["instruction"] for r in client_data(cfg, client_id).test], cfg)


# --- server half ----------------------------------------------------------------------------------


class FedRouterServer(ServerAlgorithm):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.centroids: np.ndarray | None = None  # K x d global centroids
        self.adapters_by_cluster: dict[int, dict[str, np.ndarray]] = {}  # untrained clusters absent
        self.mapping: dict[int, list[int]] = {}  # client -> global cluster of each local cluster
        self.diag: dict[str, Any] = {"routing_accuracy": {}}
        self.task_table: np.ndarray | None = None  # K x tasks: training samples per global cluster

    # setup: global clustering of every client's local centroids
    def configure_setup(self, client_ids):
        return {cid: RecordDict() for cid in client_ids}

    def aggregate_setup(self, replies):
        cids = sorted(replies)
        local = {cid: from_record(replies[cid]["centroids"]) for cid in cids}
        points = np.concatenate([local[c]["centroids"] for c in cids])
        seed = derive_seed(self.cfg.seed, 0x6C)
        if self.cfg.global_n_clusters == "auto":
            k, scores = cluster.choose_k(points, *self.cfg.k_bounds(), seed=seed)
            log.info("global silhouette %s -> K=%d", {kk: round(s, 3) for kk, s in scores.items()}, k)
        else:  # with K fixed the curve is a diagnostic (Figure 8): at 1,000 clients it costs 7 k-means fits
            k = min(int(self.cfg.global_n_clusters), len(points))
            scores = cluster.silhouette_curve(points, *self.cfg.k_bounds(), seed=seed) if self.cfg.diagnostics else {}
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
            self.task_table = np.zeros((k, len(TASKS)), dtype=np.int64)
            for cid in cids:
                for lc, gc in enumerate(self.mapping[cid]):
                    self.task_table[gc] += local[cid]["task_counts"][lc]
            self.diag.update({
                "local_purity": {str(c): m[c]["local_purity"] for c in cids},
                "local_ari": {str(c): m[c]["local_ari"] for c in cids},
                "mean_local_purity": float(np.mean([m[c]["local_purity"] for c in cids])),
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
        return list(range(k_local)) if self.cfg.train_all_clusters else [rnd % k_local]

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
            if self.cfg.resolved_router == "global":
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
        out = combine_clients(metrics)
        if self.task_table is None:  # diagnostics off: no task labels, no routing accuracy
            return out
        dom = cluster.dominant(self.task_table)
        right = total = 0.0
        for m in metrics:
            for key, count in m.items():
                if key.startswith("route/"):
                    _, g, task = key.split("/")
                    total += count
                    right += count if dom[int(g)] == TASKS.index(task) else 0.0
        out["routing_accuracy"] = right / total if total else 0.0
        self.diag["routing_accuracy"][str(rnd)] = out["routing_accuracy"]
        log.info("round %d: routing accuracy %.3f (%s router)", rnd, out["routing_accuracy"], self.cfg.resolved_router)
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


ALGORITHM = register(Algorithm("fedrouter", FedRouterServer, FedRouterClient, aliases=("clustered",),
                               summary="per-task adapters via local + global clustering, routed inference"))
