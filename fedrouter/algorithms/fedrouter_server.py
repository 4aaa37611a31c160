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
from fedrouter.routing import ClientClusters, column_order, thresholds
from fedrouter.steps import cluster
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
        self.router_state: dict[str, np.ndarray] = {}  # what every evaluation routes by (routing/routers.py)
        # open set: client -> global cluster -> (its calibration score, inputs it is based on), latest report
        self.calibration: dict[int, dict[int, tuple[float, int]]] = {}
        self.shared_adapter: dict[str, np.ndarray] | None = None  # fallback=shared

    @classmethod
    def individual_releases(cls, cfg) -> int:
        return 1  # dp: each client's noisy centroids and shares, once, at setup

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
        self.router_state = self._build_router(local, cids)
        self.privacy.account_individual("the local centroids and cluster shares")
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

    def _build_router(self, local: dict[int, dict[str, np.ndarray]], cids: list[int]) -> dict[str, np.ndarray]:
        """The routing state from every client's local clusters and their router statistics."""
        opts: FedRouterSettings = self.cfg.alg
        clients = [ClientClusters(local[c]["centroids"], local[c]["counts"], np.asarray(self.mapping[c]),
                                  {k.split("/", 1)[1]: v for k, v in local[c].items() if k.startswith("router/")})
                   for c in cids]
        try:
            return opts.routes_by.build(self.centroids, clients, opts.router_options)
        except KeyError as exc:
            raise ValueError(f"router_model={opts.router_model}: a client's setup reply lacks the statistic {exc} "
                             "this router needs (a client running another router_model?)") from None

    def _clusters_to_train(self, rnd: int, cid: int) -> list[int]:
        k_local = len(self.mapping[cid])
        return list(range(k_local)) if self.cfg.alg.train_all_clusters else [rnd % k_local]

    def configure_train(self, rnd, client_ids):
        out = {}
        opts: FedRouterSettings = self.cfg.alg
        for cid in client_ids:
            if cid not in self.mapping:
                log.warning("round %d: client %d has no local clusters (its setup failed); skipped", rnd, cid)
                continue
            clusters = self._clusters_to_train(rnd, cid)
            meta = {"clusters": clusters, "mapping": self.mapping[cid], "shared": opts.shared_fallback}
            content = RecordDict({"meta": ConfigRecord(meta)})
            for c in clusters:
                g = self.mapping[cid][c]
                if g in self.adapters_by_cluster:
                    content[f"adapter_{c}"] = to_record(self.adapters_by_cluster[g])
            if opts.routes_by.trains:  # the client trains the router
                content["router"] = to_record(self.router_state)
            if opts.open_set:  # the client calibrates the acceptance regions around the global centroids
                content["open_set"] = to_record({"centroids": np.asarray(self.centroids)})
            if opts.shared_fallback and self.shared_adapter is not None:
                content["adapter_shared"] = to_record(self.shared_adapter)
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
        if self.privacy.on:  # every cluster some client may train this round gets its noisy step, contributors or not
            expected = self._expected_contributors(rnd)
            for g in sorted(expected):
                items = groups.get(g, [])
                self.adapters_by_cluster[g] = self.fedavg([s for s, _ in items], [], self.adapters_by_cluster.get(g),
                                                          expected=max(expected[g], 1.0), tag=g)
        else:
            for g, items in groups.items():
                self.adapters_by_cluster[g] = self.fedavg([s for s, _ in items], [w for _, w in items])
        out = {f"contributors/{g}": float(len(v)) for g, v in sorted(groups.items())}
        self._aggregate_router(replies)
        shared = [(from_record(c["adapter_shared"]), metrics_of(c)["num_samples/shared"])
                  for c in replies.values() if "adapter_shared" in c.array_records]
        if shared:
            self.shared_adapter = self.fedavg([s for s, _ in shared], [w for _, w in shared], self.shared_adapter,
                                              expected=self.cfg.sample_clients, tag=len(self.centroids) + 1)
            out["contributors/shared"] = float(len(shared))
        return out

    def _expected_contributors(self, rnd: int) -> dict[int, float]:
        """dp: per global cluster, the expected number of clients that train it in round `rnd` (the sampling rate
        times the clients whose cluster of this round maps to it): the fixed denominator of its noisy average,
        known before the replies (the mapping comes from the noisy centroids)."""
        rate = self.cfg.sample_clients / self.cfg.num_clients
        counts: dict[int, float] = {}
        for cid in self.mapping:
            for c in self._clusters_to_train(rnd, cid):
                g = self.mapping[cid][c]
                counts[g] = counts.get(g, 0.0) + rate
        return counts

    def _aggregate_router(self, replies) -> None:
        """FedAvg of a trained router (weighted by the samples it was trained on); the latest calibration of
        each client that sent one."""
        trained = [(from_record(c["router"]), metrics_of(c)["num_samples/router"])
                   for c in replies.values() if "router" in c.array_records]
        if trained:
            self.router_state = self.fedavg([s for s, _ in trained], [w for _, w in trained], self.router_state,
                                            expected=self.cfg.sample_clients, tag=len(self.centroids))
        for cid, content in replies.items():
            m = metrics_of(content)
            cal = {int(k.split("/")[1]): (m[k], int(m[f"calibration/{k.split('/')[1]}/n"]))
                   for k in m if k.startswith("calibration/") and k.endswith("/score")}
            if cal:
                self.calibration[cid] = cal

    def configure_evaluate(self, rnd, client_ids):
        out = {}
        region = None  # open set: the acceptance regions, the same for every client of the round
        if self.cfg.alg.open_set:
            if self.calibration:
                region = {"centroids": np.asarray(self.centroids),
                          "thresholds": thresholds(list(self.calibration.values()), len(self.centroids))}
            else:
                log.info("round %d: open-set routing not calibrated yet (no training round has finished): "
                         "every input is routed", rnd)
        for cid in client_ids:
            if cid not in self.mapping:
                continue
            if self.cfg.alg.router == "global":
                candidates = list(range(len(self.centroids)))
            else:
                candidates = sorted(set(self.mapping[cid]))
            content = RecordDict({"router": to_record(self.router_state),
                                  "meta": ConfigRecord({"candidates": candidates})})
            if region is not None:
                content["open_set"] = to_record(region)
            for g in candidates:
                if g in self.adapters_by_cluster:
                    content[f"adapter_{g}"] = to_record(self.adapters_by_cluster[g])
            if self.cfg.alg.shared_fallback and self.shared_adapter is not None:
                content["adapter_shared"] = to_record(self.shared_adapter)
            out[cid] = content
        return out

    def aggregate_evaluate(self, rnd, replies):
        metrics = [metrics_of(c) for c in replies.values()]
        out = combine_clients(metrics, MetricSelection.of(self.cfg).names)
        if self.task_table is None:  # diagnostics off: no task labels, no routing accuracy
            return out
        counts: dict[tuple[str, str], float] = {}
        for m in metrics:
            for key, n in m.items():
                if key.startswith("route/"):
                    _, g, task = key.split("/")
                    counts[(task, g)] = counts.get((task, g), 0.0) + n
        table = routing_table(counts, self.task_table, self.tasks)
        out["routing_accuracy"] = table["accuracy"]
        if self.cfg.alg.open_set:
            out["seen_rejected"] = table["seen_rejected"]
            if table["unseen_total"]:
                out["unseen_caught"] = table["unseen_caught"]
        self.diag["routing_accuracy"][str(rnd)] = out["routing_accuracy"]
        self.diag.setdefault("routing", {})[str(rnd)] = table
        log.info("round %d: routing accuracy %.3f on seen tasks (%s router, %s)", rnd, out["routing_accuracy"],
                 self.cfg.alg.router, self.cfg.alg.router_model)
        for line in routing_lines(table):
            log.info("round %d: %s", rnd, line)
        unseen = {t: row for t, row in table["table"].items() if t in table["unseen_tasks"]}
        if unseen:
            self.diag.setdefault("unseen_routing", {})[str(rnd)] = unseen
        return out

    def diagnostics(self):
        return self.diag

    def adapters(self):
        out = {f"cluster_{g}": s for g, s in sorted(self.adapters_by_cluster.items())}
        if self.shared_adapter is not None:  # fallback=shared
            out["shared"] = self.shared_adapter
        return out

    def state_dict(self):
        arrays = {"centroids": self.centroids}
        if self.task_table is not None:
            arrays["task_table"] = self.task_table
        for g, state in self.adapters_by_cluster.items():
            arrays.update({f"cluster_{g}/{k}": v for k, v in state.items()})
        arrays.update({f"router/{k}": v for k, v in self.router_state.items()})
        arrays.update({f"shared/{k}": v for k, v in (self.shared_adapter or {}).items()})
        calibration = {str(c): {str(g): list(v) for g, v in cal.items()} for c, cal in self.calibration.items()}
        return arrays, {"mapping": {str(c): m for c, m in self.mapping.items()}, "diag": self.diag,
                        "calibration": calibration}

    def load_state_dict(self, arrays, meta):
        self.centroids, self.task_table = arrays.pop("centroids"), arrays.pop("task_table", None)
        self.adapters_by_cluster = {}
        self.router_state, shared = {}, {}
        for key, value in arrays.items():
            head, name = key.split("/", 1)
            if head == "router":
                self.router_state[name] = value
            elif head == "shared":
                shared[name] = value
            else:
                self.adapters_by_cluster.setdefault(int(head.split("_")[1]), {})[name] = value
        self.shared_adapter = shared or None
        if not self.router_state:  # a checkpoint from before router_model: the paper's router
            self.router_state = {"centroids": self.centroids}
        self.calibration = {int(c): {int(g): (float(v[0]), int(v[1])) for g, v in cal.items()}
                            for c, cal in meta.get("calibration", {}).items()}
        self.mapping = {int(c): m for c, m in meta["mapping"].items()}
        self.diag = meta["diag"]
        self.tasks = list(self.diag.get("tasks", []))


def routing_table(counts: dict[tuple[str, str], float], task_table: np.ndarray, tasks: list[str]) -> dict[str, Any]:
    """Where test inputs went: counts[(true task, global cluster id or "fallback")] with the training task
    table (K x tasks) -> the confusion table (task -> cluster -> inputs), each cluster's majority training
    task, accuracy overall and per seen task, and the open-set counts (seen inputs wrongly sent to the
    fallback, unseen ones caught by it). A task no client trained on has no right cluster: its inputs are
    shown, not counted as errors."""
    dom = cluster.dominant(task_table)
    seen = {t for j, t in enumerate(tasks) if task_table[:, j].sum() > 0}
    names = sorted({t for t, _ in counts}, key=lambda t: (t not in seen, tasks.index(t) if t in tasks else 0, t))
    conf = {t: {} for t in names}
    for (t, g), n in counts.items():
        conf[t][g] = conf[t].get(g, 0.0) + n
    right: dict[str, float] = {}
    total: dict[str, float] = {}
    rejected = caught = unseen_total = 0.0
    for t in names:
        for g, n in conf[t].items():
            if t in seen:
                total[t] = total.get(t, 0.0) + n
                if g == "fallback":
                    rejected += n
                elif tasks[dom[int(g)]] == t:
                    right[t] = right.get(t, 0.0) + n
            else:
                unseen_total += n
                caught += n if g == "fallback" else 0.0
    seen_total = sum(total.values())
    return {
        "clusters": {str(g): tasks[dom[g]] for g in range(len(task_table))},
        "table": {t: {g: conf[t][g] for g in sorted(conf[t], key=column_order)} for t in names},
        "accuracy": sum(right.values()) / seen_total if seen_total else 0.0,
        "per_task_accuracy": {t: right.get(t, 0.0) / total[t] for t in names if t in seen and total.get(t)},
        "unseen_tasks": [t for t in names if t not in seen],
        "seen_rejected": rejected / seen_total if seen_total else 0.0,
        "seen_rejected_count": rejected,
        "unseen_caught": caught / unseen_total if unseen_total else 0.0,
        "unseen_caught_count": caught,
        "unseen_total": unseen_total,
    }


def routing_lines(table: dict[str, Any]) -> list[str]:
    """The routing table for the log: one line per true task, where its inputs went (cluster -> count, with the
    cluster's majority task)."""
    lines = []
    for t, row in table["table"].items():
        where = ", ".join(f"fallback {int(n)}" if g == "fallback" else f"{g}({table['clusters'][g]}) {int(n)}"
                          for g, n in row.items())
        acc = table["per_task_accuracy"].get(t)
        lines.append(f"routing {t}: {'unseen' if acc is None else f'{acc:.2f} right'} -> {where}")
    return lines
