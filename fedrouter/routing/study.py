"""The routing study: every router candidate, on every embedding, measured on real tasks without training
an adapter.

    python -m fedrouter.routing.study --data DIR [DIR ...] --model models/smollm2-135m-instruct \\
        --seeds 0 1 --related rte=mnli yelp=amazon --out docs/results/routing-14

It runs FedRouter's clustering and routing exactly as a federated run does (the same client statistics,
server build, head training, calibration and scoring functions from fedrouter.routing), on single-task
clients: each task's training rows are shuffled per seed; `--val-share` of them are held out as the
**validation** split that chooses the default router; the rest are dealt to `--clients-per-task`
clients. The test rows are only ever scored, never used for a choice. Embeddings are computed once per
text (one forward pass gives every layer) and cached in the output folder.

Reports (in `--out`): routing.md (candidates table, validation and test accuracy, per task, confusions
split into related and unrelated pairs, open-set catch/reject rates with each task left out), runs.csv,
and the commit it ran on. `--auto-k` adds the automatic-k check (clients holding 2-4 tasks,
n_clusters=auto and global_n_clusters=auto) in auto_k.csv and a table in routing.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedrouter.routing import (
    ROUTERS,
    ClientClusters,
    RouterOptions,
    client_calibration,
    route,
    thresholds,
)
from fedrouter.routing.openset import accepted
from fedrouter.steps import cluster
from fedrouter.utils.io import atomic_write_text
from fedrouter.utils.seeding import derive_seed

log = logging.getLogger("fedrouter.routing.study")


@dataclass
class Task:
    name: str
    train: list[str]
    test: list[str]


def load_tasks(folders: list[str], train_cap: int, test_cap: int, seed: int) -> list[Task]:
    from fedrouter.data.sources.pool import load_pool

    by_task: dict[str, dict[str, list[str]]] = {}
    for folder in folders:
        for r in load_pool(folder, 0, seed):
            split = r.get("split", "train")
            by_task.setdefault(r["task"], {"train": [], "test": []})["test" if split == "test" else "train"].append(
                r["instruction"])
    out = []
    for name in sorted(by_task):  # a task's draw depends on the seed and its name, not on the other tasks
        rng = np.random.default_rng([seed, int.from_bytes(name.encode()[:8].ljust(8, b"_"), "little")])
        tr, te = by_task[name]["train"], by_task[name]["test"]
        tr = [tr[i] for i in rng.permutation(len(tr))]
        if not te:  # a source without a split column: the last quarter of the shuffled rows is the test split
            tr, te = tr[: len(tr) * 3 // 4], tr[len(tr) * 3 // 4:]
        tr = tr[:train_cap]
        te = [te[i] for i in rng.permutation(len(te))[:test_cap]]
        out.append(Task(name, tr, te))
    return out


# --- embeddings (cached per text) -------------------------------------------------------------------


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def embed_all(texts: list[str], model: str, layers: list[str], seq_length: int, cache: Path) -> dict[str, np.ndarray]:
    """name -> n x d embeddings: `base-<layer>` for each layer of the base model, `sentence` (MiniLM)."""
    wanted = [f"base-{layer}" for layer in layers] + ["sentence"]
    store: dict[str, dict[str, np.ndarray]] = {}
    for name in wanted:
        f = cache / f"embeddings-{name}.npz"
        if f.exists():
            data = np.load(f)
            store[name] = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        else:
            store[name] = {}
    keys = [_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store[f"base-{layers[0]}"]}.items())
    if missing:
        log.info("embedding %d texts with %s (layers %s)", len(missing), model, layers)
        vecs = _base_layers([t for _, t in missing], model, layers, seq_length)
        for layer in layers:
            store[f"base-{layer}"].update(zip([k for k, _ in missing], vecs[layer], strict=True))
    missing_s = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store["sentence"]}.items())
    if missing_s:
        from fedrouter.steps.embed import sentence_embeddings

        log.info("embedding %d texts with the sentence encoder", len(missing_s))
        store["sentence"].update(zip([k for k, _ in missing_s], sentence_embeddings([t for _, t in missing_s]),
                                     strict=True))
    cache.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        if (name.startswith("base") and missing) or (name == "sentence" and missing_s):
            ks = sorted(store[name])
            tmp = cache / f".embeddings-{name}.tmp.npz"
            np.savez(tmp, keys=np.asarray(ks), vectors=np.stack([store[name][k] for k in ks]))
            tmp.replace(cache / f"embeddings-{name}.npz")
    return {name: np.stack([store[name][k] for k in keys]) for name in wanted}


def _base_layers(texts: list[str], model: str, layers: list[str], seq_length: int) -> dict[str, np.ndarray]:
    """Every requested layer, mean-pooled, from one forward pass per batch: the federated run's embedding
    (fedrouter.steps.embed) on the model a run with these settings loads."""
    from fedrouter.config import RunConfig
    from fedrouter.models.backbone import get_backbone
    from fedrouter.steps.embed import layer_embeddings

    cfg = RunConfig.from_mapping({"model_name_or_path": model, "dtype": "float32", "seq_length": seq_length})
    return layer_embeddings(get_backbone(cfg), texts, seq_length, 32, layers)


# --- one federation of single-task clients ----------------------------------------------------------


@dataclass
class Federation:
    clients: list[ClientClusters]
    fit: list[tuple[np.ndarray, np.ndarray]]  # per client: (training embeddings, local cluster labels)
    centroids: np.ndarray
    majority: np.ndarray  # global cluster -> task index


def federate(train_emb: list[np.ndarray], clients_per_task: int, k_global: int, seed: int,
             router_names: list[str]) -> Federation:
    """Single-task clients: task t's training embeddings dealt to `clients_per_task` clients, one local
    cluster each (k-means k=1), global k-means of all local centroids with K = k_global."""
    rows, task_of, cents = [], [], []
    for t, e in enumerate(train_emb):
        for part in np.array_split(np.arange(len(e)), clients_per_task):
            c, lab = cluster.kmeans(e[part], 1, derive_seed(seed, len(rows), 0xC1))
            rows.append((e[part], lab))
            cents.append(c)
            task_of.append(t)
    points = np.concatenate(cents)
    centroids, _ = cluster.kmeans(points, k_global, derive_seed(seed, 0x6C))
    clients = []
    table = np.zeros((k_global, len(train_emb)))
    for i, c in enumerate(cents):
        mapping = cluster.nearest(c, centroids)
        stats = {}
        for name in router_names:
            # float32, as a client's setup reply sends them
            stats.update({k: np.asarray(v, dtype=np.float32)
                          for k, v in ROUTERS[name].client_stats(*rows[i], len(c)).items()})
        counts = np.bincount(rows[i][1], minlength=len(c))
        clients.append(ClientClusters(c, counts, mapping, stats))
        table[mapping[0], task_of[i]] += counts[0]
    return Federation(clients, rows, centroids, table.argmax(1))


def build_router(name: str, fed: Federation, rounds: int, seed: int, opts: RouterOptions) -> dict[str, np.ndarray]:
    """The server's routing state; a trained router (the head) gets `rounds` FedAvg rounds over all clients."""
    from fedrouter.steps.aggregate import weighted_average

    router = ROUTERS[name]
    state = router.build(fed.centroids, fed.clients, opts)
    if router.trains:
        for rnd in range(1, rounds + 1):
            new = [router.client_train(state, e, c.mapping[lab], derive_seed(seed, i, rnd, 0x4E), opts)
                   for i, ((e, lab), c) in enumerate(zip(fed.fit, fed.clients, strict=True))]
            state = weighted_average(new, [len(e) for e, _ in fed.fit])
    return state


def calibrate(fed: Federation, accept: float) -> np.ndarray:
    """The open-set thresholds: every client's calibration on its training rows, combined by the server."""
    cals = [client_calibration(fed.centroids, e, c.mapping[lab], accept) for (e, lab), c in zip(fed.fit, fed.clients,
                                                                                                  strict=True)]
    return thresholds(cals, len(fed.centroids))


# --- the study --------------------------------------------------------------------------------------


def _related_pairs(specs: list[str]) -> set[frozenset[str]]:
    return {frozenset(s.split("=")) for s in specs}


def study(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    routers = args.routers or list(ROUTERS)
    opts = RouterOptions(shrinkage=args.shrinkage)
    related = _related_pairs(args.related)
    rows, confusions, openset, autok = [], {}, [], []
    for seed in args.seeds:
        tasks = load_tasks(args.data, args.train_per_task, args.test_per_task, seed)
        names = [t.name for t in tasks]
        texts = [x for t in tasks for x in t.train + t.test]
        embs = embed_all(texts, args.model, args.layers, args.seq_length, out)
        for emb_name, allv in embs.items():
            pos, train, val, test = 0, [], [], []
            rng = np.random.default_rng(derive_seed(seed, 0x5A))
            for t in tasks:
                tr = allv[pos:pos + len(t.train)]
                te = allv[pos + len(t.train):pos + len(t.train) + len(t.test)]
                pos += len(t.train) + len(t.test)
                perm = rng.permutation(len(tr))
                n_val = int(round(args.val_share * len(tr)))
                val.append(tr[perm[:n_val]])
                train.append(tr[perm[n_val:]])
                test.append(te)
            fed = federate(train, args.clients_per_task, len(tasks), seed, routers)
            for name in routers:
                state = build_router(name, fed, args.head_rounds, seed, opts)
                row = {"seed": seed, "embedding": emb_name, "router": name}
                for split, parts in (("val", val), ("test", test)):
                    emb = np.concatenate(parts)
                    truth = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
                    chosen, _ = route(ROUTERS[name], state, emb)
                    got = fed.majority[chosen]
                    ok = got == truth
                    lenient = ok | np.asarray([frozenset((names[a], names[b])) in related for a, b in zip(truth, got,
                                                                                                       strict=True)])
                    row[f"{split}_accuracy"] = float(ok.mean())
                    row[f"{split}_accuracy_related"] = float(lenient.mean())
                    if split == "test":
                        for i, n in enumerate(names):
                            row[f"test/{n}"] = float(ok[truth == i].mean())
                        confusions[(seed, emb_name, name)] = Counter(
                            (names[a], names[b]) for a, b in zip(truth, got, strict=True) if a != b)
                rows.append(row)
                log.info("seed %d %-14s %-10s val %.3f test %.3f (related %.3f)", seed, emb_name, name,
                         row["val_accuracy"], row["test_accuracy"], row["test_accuracy_related"])
            if args.accept and emb_name in args.openset_embeddings:
                openset += _openset(train, test, names, args, seed, emb_name, routers, opts)
            if args.auto_k and emb_name in args.openset_embeddings:
                autok += [{"embedding": emb_name, **r} for r in auto_k(train, names, seed, args)]
    return {"rows": rows, "confusions": confusions, "openset": openset, "auto_k": autok}


def auto_k(train: list[np.ndarray], names: list[str], seed: int, args: argparse.Namespace) -> list[dict]:
    """Clients holding 2-4 tasks each (every task's rows dealt to the clients that hold it), local k chosen
    by the run's rule (`n_clusters=auto`, k in 1..8), then K over all local centroids
    (`global_n_clusters=auto`, K in 1..`--auto-k-max`): each choice against the truth."""
    rng = np.random.default_rng(derive_seed(seed, 0xA7))
    n_clients = args.auto_k_clients
    holds = [sorted(rng.choice(len(names), size=int(rng.integers(2, 5)), replace=False).tolist()) for _ in range(n_clients)]
    for t in range(len(names)):  # every task held by at least one client
        if not any(t in h for h in holds):
            holds[int(rng.integers(n_clients))].append(t)
    parts = {t: np.array_split(rng.permutation(len(train[t])), sum(t in h for h in holds)) for t in range(len(names))}
    used = dict.fromkeys(range(len(names)), 0)
    rows, cents = [], []
    for cid, h in enumerate(holds):
        emb = []
        for t in h:
            emb.append(train[t][parts[t][used[t]]])
            used[t] += 1
        emb = np.concatenate(emb)
        k, _ = cluster.choose_k(emb, 1, 8, seed=derive_seed(seed, cid, 0xC1), rule=args.k_rule)
        c, _ = cluster.kmeans(emb, k, derive_seed(seed, cid, 0xC1))
        cents.append(c)
        rows.append({"seed": seed, "level": "local", "client": cid, "tasks": len(h), "chosen": k})
    points = np.concatenate(cents)
    big_k, _ = cluster.choose_k(points, 1, min(args.auto_k_max, len(points)), seed=derive_seed(seed, 0x6C), rule=args.k_rule)
    rows.append({"seed": seed, "level": "global", "client": -1, "tasks": len(names), "chosen": big_k})
    log.info("seed %d auto k (%s): local %s against %s; global K=%d against %d", seed, args.k_rule,
             [r["chosen"] for r in rows[:-1]], [len(h) for h in holds], big_k, len(names))
    return rows


def _openset(train, test, names, args, seed, emb_name, routers, opts) -> list[dict]:
    """Each task left out in turn: the other tasks' clients build the router and calibrate it; how many
    seen test inputs are wrongly rejected, how many of the left-out task's are caught."""
    out = []
    for left in range(len(names)):
        keep = [i for i in range(len(names)) if i != left]
        fed = federate([train[i] for i in keep], args.clients_per_task, len(keep), seed, routers)
        seen = np.concatenate([test[i] for i in keep])
        for name in routers:
            state = build_router(name, fed, args.head_rounds, seed, opts)
            c_seen, _ = route(ROUTERS[name], state, seen)
            c_un, _ = route(ROUTERS[name], state, test[left])
            for accept in args.accept:
                limits = calibrate(fed, accept)
                out.append({"seed": seed, "embedding": emb_name, "router": name, "accept": accept,
                            "left_out": names[left],
                            "seen_rejected": float(1 - accepted(fed.centroids, seen, c_seen, limits).mean()),
                            "unseen_caught": float(1 - accepted(fed.centroids, test[left], c_un, limits).mean())})
        log.info("seed %d %s: open set with %s left out done", seed, emb_name, names[left])
    return out


def write_report(res: dict, args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = res["rows"]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)
    if res["openset"]:
        with open(out / "openset.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(res["openset"][0]))
            w.writeheader()
            w.writerows(res["openset"])
    lines = ["# Routing study", "",
             f"Commit `{_commit()}`; command: `python -m fedrouter.routing.study {' '.join(sys.argv[1:])}`", "",
             f"{len(args.seeds)} seeds; single-task clients ({args.clients_per_task} per task); "
             f"{args.val_share:.0%} of each task's training rows held out as the validation split that picks the "
             "default; test rows only scored. Accuracy: a test input is right when its chosen global cluster's "
             "majority training task is its own task; *related* also counts the pairs "
             f"{', '.join(sorted('/'.join(sorted(p)) for p in _related_pairs(args.related))) or '(none)'} as right.", "",
             "## Candidates (mean ± std over seeds)", "",
             "| embedding | router | validation | test | test, related pairs right |", "| --- | --- | --- | --- | --- |"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["embedding"], r["router"]), []).append(r)

    def ms(vals):
        return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1) if len(vals) > 1 else 0:.3f}"

    for (e, n), rs in groups.items():
        lines.append(f"| {e} | {n} | {ms([r['val_accuracy'] for r in rs])} | {ms([r['test_accuracy'] for r in rs])} | "
                     f"{ms([r['test_accuracy_related'] for r in rs])} |")
    best = {}
    for (e, n), rs in groups.items():
        v = float(np.mean([r["val_accuracy"] for r in rs]))
        if e not in best or v > best[e][1]:
            best[e] = (n, v)
    overall = max(groups, key=lambda g: np.mean([r["val_accuracy"] for r in groups[g]]))
    lines += ["", "## Chosen by validation accuracy", "",
              "Per embedding, the router with the highest mean validation accuracy: "
              + "; ".join(f"{e}: **{n}** ({v:.3f})" for e, (n, v) in best.items())
              + f". Over all: **{overall[1]}** on **{overall[0]}**.", ""]
    names = [k.split("/", 1)[1] for k in fields if k.startswith("test/")]
    lines += ["## Test accuracy per task (mean over seeds)", "",
              "| embedding | router | " + " | ".join(names) + " |", "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for (e, n), rs in groups.items():
        lines.append(f"| {e} | {n} | " + " | ".join(f"{np.mean([r[f'test/{t}'] for r in rs]):.2f}" for t in names) + " |")
    related = _related_pairs(args.related)
    lines += ["", "## Where misrouted test inputs went (summed over seeds)", "",
              "| embedding | router | related pairs | unrelated pairs |", "| --- | --- | --- | --- |"]
    for (e, n) in groups:
        total: Counter = Counter()
        for s in args.seeds:
            total.update(res["confusions"].get((s, e, n), Counter()))
        rel = {k: v for k, v in total.items() if frozenset(k) in related}
        unrel = {k: v for k, v in total.items() if frozenset(k) not in related}

        def fmt(d):
            return ", ".join(f"{a}->{b} {c}" for (a, b), c in sorted(d.items(), key=lambda kv: -kv[1])[:8]) or "–"

        lines.append(f"| {e} | {n} | {fmt(rel)} | {fmt(unrel)} |")
    if res["openset"]:
        lines += ["", "## Open set: each task left out", "",
                  "The other tasks' clients build the router and calibrate the acceptance regions (a ball around each "
                  "global centroid holding the target share of its clients' training inputs); seen test inputs wrongly "
                  "rejected and left-out-task test inputs caught (sent to the fallback), mean over left-out tasks and "
                  "seeds, and the caught share per left-out task.", "",
                  "| embedding | router | target | seen rejected | unseen caught | caught per left-out task |",
                  "| --- | --- | --- | --- | --- | --- |"]
        og: dict[tuple[str, str, float], list[dict]] = {}
        for r in res["openset"]:
            og.setdefault((r["embedding"], r["router"], r["accept"]), []).append(r)
        for (e, n, a), rs in og.items():
            per: dict[str, list[float]] = {}
            for r in rs:
                per.setdefault(r["left_out"], []).append(r["unseen_caught"])
            lines.append(f"| {e} | {n} | {a} | {np.mean([r['seen_rejected'] for r in rs]):.3f} | "
                         f"{np.mean([r['unseen_caught'] for r in rs]):.3f} | "
                         + ", ".join(f"{t} {np.mean(v):.2f}" for t, v in per.items()) + " |")
    if res["auto_k"]:
        with open(out / "auto_k.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(res["auto_k"][0]))
            w.writeheader()
            w.writerows(res["auto_k"])
        lines += ["", f"## Automatic k ({args.k_rule}), clients holding 2-4 tasks", "",
                  "| embedding | seed | local k right (chosen = tasks held) | local k chosen - held, mean | global K chosen | "
                  "tasks |", "| --- | --- | --- | --- | --- | --- |"]
        for (e, seed) in dict.fromkeys((r["embedding"], r["seed"]) for r in res["auto_k"]):
            loc = [r for r in res["auto_k"] if r["embedding"] == e and r["seed"] == seed and r["level"] == "local"]
            glo = next(r for r in res["auto_k"] if r["embedding"] == e and r["seed"] == seed and r["level"] == "global")
            lines.append(f"| {e} | {seed} | {sum(r['chosen'] == r['tasks'] for r in loc)} / {len(loc)} | "
                         f"{np.mean([r['chosen'] - r['tasks'] for r in loc]):+.2f} | {glo['chosen']} | {glo['tasks']} |")
    path = out / "routing.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_text(out / "args.json", json.dumps(vars(args), indent=1) + "\n")
    return path


def _commit() -> str:
    from fedrouter.results.provenance import git_state

    commit, dirty = git_state(Path(__file__).resolve().parents[1])  # the fedrouter package
    return f"{commit}{' (with uncommitted changes)' if dirty else ''}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fedrouter.routing.study", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="folders (or files) of instruction records with a task column")
    p.add_argument("--model", required=True, help="base model folder or id (its hidden states are embeddings)")
    p.add_argument("--layers", nargs="+", default=["last", "middle"], help="base-model layers to embed with")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--routers", nargs="*", default=None, help=f"default: all ({', '.join(ROUTERS)})")
    p.add_argument("--clients-per-task", type=int, default=2)
    p.add_argument("--train-per-task", type=int, default=200)
    p.add_argument("--test-per-task", type=int, default=100)
    p.add_argument("--val-share", type=float, default=0.2)
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("--head-rounds", type=int, default=6, help="FedAvg rounds of the routing head (a run's num_rounds)")
    p.add_argument("--shrinkage", type=float, default=RouterOptions.shrinkage)
    p.add_argument("--accept", type=float, nargs="*", default=[0.95, 0.99],
                   help="open-set acceptance targets (none: skip the open-set part)")
    p.add_argument("--openset-embeddings", nargs="*", default=["base-last"])
    p.add_argument("--auto-k", action="store_true", help="also check automatic k (clients holding 2-4 tasks)")
    p.add_argument("--auto-k-clients", type=int, default=20)
    p.add_argument("--auto-k-max", type=int, default=24, help="the largest K the global rule may try")
    p.add_argument("--k-rule", default="gap", help="auto's rule: gap | silhouette")
    p.add_argument("--related", nargs="*", default=[], help="task pairs a=b whose confusion is reported apart")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    res = study(args)
    print(write_report(res, args))


if __name__ == "__main__":
    main()
