"""FedRouter's server half: the global k-means of every client's local centroids, FedAvg within each
global cluster, the routing message of each evaluation, and the diagnostics (purity, ARI, routing
accuracy). It meets the client half (fedrouter.py) only through messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import ConfigRecord, RecordDict

from fedrouter.algorithms.base import ServerAlgorithm, from_record, meta_of, metrics_of, to_record
from fedrouter.metrics import MetricSelection, combine_clients
from fedrouter.steps import cluster
from fedrouter.steps.aggregate import weighted_average
from fedrouter.utils.seeding import derive_seed

if TYPE_CHECKING:
    from fedrouter.algorithms.fedrouter import FedRouterSettings

log = logging.getLogger("fedrouter.fedrouter")


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
            content = RecordDict({"router": to_record({"centroids": np.asarray(self.centroids)}),
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
