"""What an honest-but-curious server learns from the clustering step's release, with and without DP.

    python -m fedrouter.privacy.attacks [--config PRESET.toml] [key=value ...] --epsilons inf 8 3 1 \\
        --seeds 0 1 --out docs/results/privacy-leak

The clients, their data and their embeddings are a run's (the same settings: data, split, model, n_clusters,
embedding), and each client clusters its training instructions as in the run's setup step. What the server
receives is each client's local centroids and cluster shares: as they are (epsilon = inf, dp off), or at each
epsilon through the run's mechanism (embeddings clipped to dp_embedding_clip, Gaussian noise of std sigma x the
set's sensitivity), sigma being what a run with that budget would use (calibrated for the run's training rounds
and this release together). Two attacks by the server:

- **task inference**: each released centroid is labelled with the task whose public centroid is nearest (the
  public reference: each task's test rows, which no client trains on); accuracy against the task most of that
  local cluster's rows belong to (chance: 1 / tasks).
- **membership**: for a released centroid, is a candidate instruction in that client's cluster? Score: minus the
  candidate's distance to the centroid; members: the cluster's own rows; non-members: as many rows of the same
  task from other clients. AUC (0.5 = the server learns nothing).

Beside them, what the noise costs the method: purity of the global k-means of the released centroids, and the
share of test inputs a nearest-global-centroid router sends to a cluster of their own task.
Reports (in `--out`): leak.md, runs.csv and the commit it ran on.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
from pathlib import Path

import numpy as np

from fedrouter.utils.io import atomic_write_text
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.privacy.attacks")


def _client_embeddings(cfg) -> tuple[list[np.ndarray], list[list[str]], list[np.ndarray], list[list[str]]]:
    """Per client: training embeddings and their tasks, test embeddings and their tasks (the run's embedding)."""
    from fedrouter.algorithms.fedrouter import embed_instructions
    from fedrouter.data.federated import all_client_data
    from fedrouter.models.backbone import get_backbone

    backbone = get_backbone(cfg)
    raw = cfg.replace(dp="off")  # raw embeddings; each setting clips them itself
    train, train_tasks, test, test_tasks = [], [], [], []
    for data in all_client_data(cfg):
        train.append(embed_instructions(backbone, [r["instruction"] for r in data.train], raw))
        train_tasks.append([r["task"] for r in data.train])
        test.append(embed_instructions(backbone, [r["instruction"] for r in data.test], raw)
                    if data.test else np.zeros((0, train[-1].shape[1])))
        test_tasks.append([r["task"] for r in data.test])
    return train, train_tasks, test, test_tasks


def _clip(x: np.ndarray, r: float | None) -> np.ndarray:
    from fedrouter.privacy.mechanism import clip_rows

    return clip_rows(x, r) if r is not None and len(x) else x


def attack(cfg, epsilons: list[float], emb=None) -> list[dict]:
    """One row per epsilon (math.inf = no DP): sigma, the two attacks and the utility costs."""
    from sklearn.metrics import roc_auc_score

    from fedrouter.privacy.accounting import Plan, calibrate
    from fedrouter.privacy.mechanism import noisy_centroids
    from fedrouter.steps import cluster

    train, train_tasks, test, test_tasks = emb if emb is not None else _client_embeddings(cfg)
    tasks = sorted({t for ts in train_tasks + test_tasks for t in ts})
    k_local = cfg.alg.n_clusters.value
    k_global = min(cfg.alg.global_n_clusters.value, len(train) * k_local)
    # the public reference: each task's mean test embedding (rows no client trains on)
    all_test = np.concatenate([t for t in test if len(t)])
    all_test_tasks = np.array([t for ts in test_tasks for t in ts])
    rows = []
    for eps in epsilons:
        private = math.isfinite(eps)
        r = cfg.dp_embedding_clip if private else None
        dp_cfg = cfg.replace(dp="central")
        sigma = calibrate(dp_cfg, Plan(rounds=cfg.num_rounds, individual=1), eps) if private else 0.0
        public = np.stack([_clip(all_test, r)[all_test_tasks == t].mean(0) for t in tasks])
        released, truth, members, clusters = [], [], [], []
        for i, (e, ts) in enumerate(zip(train, train_tasks, strict=True)):
            x = _clip(e, r)
            k = min(k_local, len(np.unique(x, axis=0)))
            cents, labels = cluster.kmeans(x, k, derive_seed(cfg.seed, i, 0xC1))
            counts = np.bincount(labels, minlength=k)
            if private:
                rng = np.random.default_rng(derive_seed(cfg.seed, i, 0xD7))
                cents, _ = noisy_centroids(cents, counts / counts.sum(), cfg.dp_embedding_clip, sigma, rng)
            for c in range(k):
                rows_c = np.flatnonzero(labels == c)
                major = max(tasks, key=lambda t, rows_c=rows_c: sum(ts[j] == t for j in rows_c))
                released.append(cents[c])
                truth.append(major)
                members.append((i, x[rows_c]))
                clusters.append((i, c))
        released = np.stack(released)
        # (a) task inference: nearest public task centroid
        guess = [tasks[j] for j in cluster.nearest(released, public)]
        task_acc = float(np.mean([g == t for g, t in zip(guess, truth, strict=True)]))
        # (b) membership: members of the centroid's cluster against same-task rows of other clients
        scores, labels_mi = [], []
        pool = {t: [(i, _clip(e, r)[np.array(ts) == t]) for i, (e, ts) in enumerate(zip(train, train_tasks, strict=True))]
                for t in tasks}
        rng = np.random.default_rng(derive_seed(cfg.seed, 0xA7))
        for j, (i, own) in enumerate(members):
            others = np.concatenate([x for c, x in pool[truth[j]] if c != i and len(x)] or [np.zeros((0, own.shape[1]))])
            if len(own) == 0 or len(others) == 0:
                continue
            non = others[rng.choice(len(others), size=min(len(own), len(others)), replace=False)]
            d_in = -np.linalg.norm(own - released[j], axis=1)
            d_out = -np.linalg.norm(non - released[j], axis=1)
            scores += d_in.tolist() + d_out.tolist()
            labels_mi += [1] * len(d_in) + [0] * len(d_out)
        auc = float(roc_auc_score(labels_mi, scores)) if len(set(labels_mi)) == 2 else float("nan")
        # utility: global k-means of the released centroids, purity and routing of the test inputs
        gcents, glabels = cluster.kmeans(released, k_global, derive_seed(cfg.seed, 0x6C))
        table = np.zeros((k_global, len(tasks)))
        for g, t in zip(glabels, truth, strict=True):
            table[g, tasks.index(t)] += 1
        majority = table.argmax(1)
        routed = cluster.nearest(_clip(all_test, r), gcents)
        routing = float(np.mean([tasks[majority[g]] == t for g, t in zip(routed, all_test_tasks, strict=True)]))
        rows.append({"epsilon": eps, "sigma": sigma, "task_inference": task_acc, "chance": 1.0 / len(tasks),
                     "membership_auc": auc, "global_purity": cluster.purity(table.astype(np.int64)),
                     "routing_accuracy": routing, "clients": len(train), "centroids": len(released),
                     "delta": cfg.privacy.delta_for(cfg.num_clients)})
        log.info("epsilon %s (sigma %.3g): task inference %.3f, membership AUC %.3f, purity %.3f, routing %.3f",
                 eps, sigma, task_acc, auc, rows[-1]["global_purity"], routing)
    return rows


def _commit() -> str:
    from fedrouter.results.provenance import git_state

    commit, dirty = git_state(Path(__file__).resolve().parents[1])
    return f"{commit}{' (with uncommitted changes)' if dirty else ''}"


def _public(text: str) -> str:
    """An absolute path as `path/to/<its name>`: the report says which data, not where it sat on this machine."""
    head, sep, tail = text.partition("=")
    value = tail if sep else head
    if value.startswith("/"):
        value = f"path/to/{Path(value).name}"
    return f"{head}={value}" if sep else value


def write_report(rows: list[dict], cfg, args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = ["seed", "epsilon", "sigma", "task_inference", "chance", "membership_auc", "global_purity",
            "routing_accuracy", "clients", "centroids", "delta"]
    with open(out / ".runs.csv.tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows({k: r[k] for k in keys} for r in rows)
    (out / ".runs.csv.tmp").replace(out / "runs.csv")

    def cell(eps, key):
        vals = [r[key] for r in rows if r["epsilon"] == eps]
        return f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if len(vals) > 1 else f"{vals[0]:.3f}"

    lines = [
        "# What the server learns from the clustering step's release",
        "",
        f"`python -m fedrouter.privacy.attacks {' '.join(_public(a) for a in args.argv)}` at commit {_commit()}.",
        "",
        f"{cfg.num_clients} clients, data `{_public(cfg.dataset_name)}` ({cfg.split_strategy} split), model "
        f"`{cfg.model_name_or_path}`, n_clusters={cfg.alg.n_clusters}, global_n_clusters={cfg.alg.global_n_clusters}; "
        f"embeddings clipped to R={cfg.dp_embedding_clip} under DP; sigma calibrated for {cfg.num_rounds} training "
        f"rounds plus this release (dp_sampling={cfg.dp_sampling}, sample_clients={cfg.sample_clients}), delta "
        f"{rows[0]['delta']:.2g}. Seeds {sorted({r['seed'] for r in rows})}: mean ± std over seeds.",
        "",
        "| epsilon | sigma | task inference (chance) | membership AUC | global purity | routing accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for eps in dict.fromkeys(r["epsilon"] for r in rows):
        chance = rows[0]["chance"]
        lines.append(f"| {'∞ (no DP)' if not math.isfinite(eps) else eps:} | {cell(eps, 'sigma')} | "
                     f"{cell(eps, 'task_inference')} ({chance:.2f}) | {cell(eps, 'membership_auc')} | "
                     f"{cell(eps, 'global_purity')} | {cell(eps, 'routing_accuracy')} |")
    path = out / "leak.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    import sys

    from fedrouter.config import default_algorithm
    from fedrouter.runtime.simulate import build_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    p = argparse.ArgumentParser(prog="python -m fedrouter.privacy.attacks", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=None, help="a preset (as the launcher takes)")
    p.add_argument("--epsilons", nargs="+", type=float, default=[math.inf, 8.0, 3.0, 1.0], help="inf = no DP")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--out", required=True)
    p.add_argument("overrides", nargs="*", help="key=value settings (the run's)")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    base = build_config(args.config, [*args.overrides, f"fed_alg={default_algorithm()}"])
    rows = []
    for seed in args.seeds:
        cfg = base.replace(seed=seed)
        emb = _client_embeddings(cfg)
        rows += [{**r, "seed": seed} for r in attack(cfg, args.epsilons, emb)]
    print(write_report(rows, base, args))


if __name__ == "__main__":
    main()
