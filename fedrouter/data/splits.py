"""Train/test split of a record pool and its partition into per-client shards (single, dual, all)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger("fedrouter.data")

SPLIT_STRATEGIES = ("single", "dual", "all")
SPLIT_ALIASES = {"multitask_clusters": "single", "multitask_multi_domain": "dual", "multitask_iid": "all"}
TEST_DISTRIBUTIONS = ("same", "all")
_SPLIT_VALUES = ("train", "test")


@dataclass(frozen=True)
class ClientData:
    """One client's data: the tasks whose TRAIN data it holds, its train and test records, every
    task of the data (in the data's order: the columns of per-task diagnostics), and the tasks no
    client trains on (scored apart as "unseen")."""

    client_id: int
    tasks: tuple[str, ...]
    train: list[dict]
    test: list[dict]
    task_names: tuple[str, ...] = ()
    unseen_tasks: tuple[str, ...] = ()


# The paper's benchmark (and the built-in one that mirrors it) assigns clients to tasks in this order.
BENCHMARK_TASKS: tuple[str, ...] = ("qqp", "gigaword", "samsum", "webnlg")


def pool_tasks(records: Sequence[dict]) -> tuple[str, ...]:
    """The data's tasks: the benchmark's order when the data holds exactly the benchmark's four tasks
    (the reference code's client-to-task assignment), otherwise the order of first appearance."""
    found = tuple(dict.fromkeys(str(r["task"]) for r in records))
    return BENCHMARK_TASKS if sorted(found) == sorted(BENCHMARK_TASKS) else found


def canonical_split(name: str) -> str:
    """Map a split strategy name or its reference-code alias to one of SPLIT_STRATEGIES."""
    key = str(name).strip().lower()
    key = SPLIT_ALIASES.get(key, key)
    if key not in SPLIT_STRATEGIES:
        allowed = ", ".join((*SPLIT_STRATEGIES, *SPLIT_ALIASES))
        raise ValueError(f"unknown split strategy {name!r}; allowed: {allowed}")
    return key


def train_test_split(pool: list[dict], train_split: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Split the pool into train and test records (new dicts, without the 'split' key).

    If every record carries a 'split' value, that split is used as is and train_split is ignored.
    Otherwise the pool is shuffled with random.Random(seed) and each task is cut at train_split, so every
    task keeps the same train/test proportion.
    """
    with_split = sum(1 for r in pool if r.get("split") is not None)
    if pool and with_split == len(pool):
        train: list[dict] = []
        test: list[dict] = []
        for r in pool:
            if r["split"] not in _SPLIT_VALUES:
                raise ValueError(f"record split value {r['split']!r} is not 'train' or 'test'")
            (train if r["split"] == "train" else test).append(_without_split(r))
        logger.info(
            "using the pool's split column: %d train, %d test (train_split ignored)", len(train), len(test)
        )
        return train, test
    if with_split:
        # Mixing given and missing splits would be ambiguous; re-splitting everything is the safe choice.
        logger.warning(
            "%d of %d records have a split value; ignoring it and splitting every task at train_split=%s",
            with_split,
            len(pool),
            train_split,
        )
    if not 0.0 < float(train_split) < 1.0:
        raise ValueError(f"train_split must be strictly between 0 and 1, got {train_split!r}")
    shuffled = list(pool)
    random.Random(seed).shuffle(shuffled)
    sizes: dict[str, int] = {}
    for r in shuffled:
        sizes[r["task"]] = sizes.get(r["task"], 0) + 1
    n_train = {t: round(n * float(train_split)) for t, n in sizes.items()}
    seen: dict[str, int] = {}
    train, test = [], []
    for r in shuffled:
        t = r["task"]
        seen[t] = seen.get(t, 0) + 1
        (train if seen[t] <= n_train[t] else test).append(_without_split(r))
    return train, test


def partition(
    train: list[dict],
    test: list[dict],
    strategy: str,
    num_clients: int,
    *,
    max_data_per_client: int,
    max_eval_size: int,
    test_distribution: str,
    seed: int,
    tasks: Sequence[str],
) -> list[ClientData]:
    """Give each of `num_clients` clients disjoint train shards of its tasks and a test set.

    single: client i holds task i // n (n = num_clients // 4), shard i % n.
    dual:   client i holds tasks g = i // n and (g + 1) % 4, one shard of each (each task is cut into 2n shards).
    all:    every client holds a disjoint shard of every task.
    test_distribution 'same' tests a client on its own tasks, 'all' on every task. Caps (0 = none) keep the
    per-task balance. Everything is deterministic in `seed`.
    """
    tasks = tuple(tasks)
    strategy = canonical_split(strategy)
    if test_distribution not in TEST_DISTRIBUTIONS:
        raise ValueError(
            f"test_distribution must be one of {', '.join(TEST_DISTRIBUTIONS)}, got {test_distribution!r}"
        )
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"num_clients must be a positive integer, got {num_clients!r}")
    if strategy != "all" and num_clients % len(tasks):
        raise ValueError(
            f"num_clients={num_clients} is not a positive multiple of {len(tasks)}, which the {strategy!r} split "
            f"needs (one equal group of clients per task); use e.g. {len(tasks) * max(1, num_clients // len(tasks))}"
        )
    for label, cap in (("max_data_per_client", max_data_per_client), ("max_eval_size", max_eval_size)):
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"{label} must be an integer >= 0 (0 = no cap), got {cap!r}")

    client_tasks = _client_tasks(strategy, num_clients, tasks)
    test_tasks = client_tasks if test_distribution == "same" else [tasks] * num_clients
    train_by_task = _group(train, tasks, "train")
    test_by_task = _group(test, tasks, "test")

    train_parts = _assign(train_by_task, client_tasks, max_data_per_client, seed, "train", allow_reuse=False)
    # Test shards are disjoint whenever a task has at least one test record per client that needs it; with
    # fewer, records are reused across clients (evaluation only, so no training data leaks) rather than
    # leaving a client without test data for a task it must be scored on.
    test_parts = _assign(test_by_task, test_tasks, max_eval_size, seed, "test", allow_reuse=True)

    clients = []
    for i in range(num_clients):
        tr, te = train_parts[i], test_parts[i]
        # Shards are grouped by task; shuffle so batches and evaluation order mix the client's tasks.
        random.Random(f"{seed}:client:{i}:train").shuffle(tr)
        random.Random(f"{seed}:client:{i}:test").shuffle(te)
        clients.append(ClientData(client_id=i, tasks=client_tasks[i], train=tr, test=te, task_names=tasks))
    logger.info(
        "partition %s/%s: %d clients, train sizes %s, test sizes %s",
        strategy,
        test_distribution,
        num_clients,
        [len(c.train) for c in clients],
        [len(c.test) for c in clients],
    )
    return clients


# -------------------------------------------------------------------------------------------- helpers


def _without_split(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "split"}


def _client_tasks(strategy: str, num_clients: int, tasks: Sequence[str]) -> list[tuple[str, ...]]:
    if strategy == "all":
        return [tuple(tasks)] * num_clients
    n = num_clients // len(tasks)
    out = []
    for i in range(num_clients):
        g = i // n
        out.append((tasks[g],) if strategy == "single" else (tasks[g], tasks[(g + 1) % len(tasks)]))
    return out


def _group(records: list[dict], tasks: Sequence[str], kind: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {t: [] for t in tasks}
    unknown: dict[str, int] = {}
    for r in records:
        t = r.get("task")
        if t in groups:
            groups[t].append(r)
        else:
            unknown[str(t)] = unknown.get(str(t), 0) + 1
    if unknown:
        raise ValueError(
            f"{kind} records have unknown task(s) {unknown}; the data's tasks are {', '.join(tasks)}"
        )
    return groups


def _assign(
    by_task: dict[str, list[dict]],
    client_tasks: Sequence[tuple[str, ...]],
    cap: int,
    seed: int,
    kind: str,
    *,
    allow_reuse: bool,
) -> list[list[dict]]:
    """Cut each task into one shard per client that holds it (clients in id order) and give every client
    its shards, trimmed to a per-task quota so a capped client keeps its task balance."""
    parts: list[list[dict]] = [[] for _ in client_tasks]
    for task, recs in by_task.items():
        holders = [i for i, ts in enumerate(client_tasks) if task in ts]
        if not holders:
            continue
        if len(recs) < len(holders) and not (allow_reuse and recs):
            raise ValueError(
                f"task {task!r} has {len(recs)} {kind} records but {len(holders)} clients need a disjoint shard "
                f"each (at least {len(holders)} records); lower num_clients or provide more {task} data"
            )
        shuffled = list(recs)
        random.Random(f"{seed}:{kind}:{task}").shuffle(shuffled)
        if len(shuffled) < len(holders):
            logger.warning(
                "task %r has only %d %s records for %d clients; some records are shared between clients",
                task,
                len(shuffled),
                kind,
                len(holders),
            )
        for shard, client in zip(_shards(shuffled, len(holders)), holders, strict=True):
            quota = _quota(cap, client_tasks[client], task, client)
            parts[client].extend(dict(r) for r in (shard if quota is None else shard[:quota]))
    return parts


def _shards(records: list[dict], k: int) -> list[list[dict]]:
    """k contiguous, near-equal, disjoint shards; with fewer records than k, shard j holds record j mod len."""
    n = len(records)
    if n < k:
        return [[records[j % n]] for j in range(k)]
    base, extra = divmod(n, k)
    out, start = [], 0
    for j in range(k):
        size = base + (1 if j < extra else 0)
        out.append(records[start : start + size])
        start += size
    return out


def _quota(cap: int, client_tasks: tuple[str, ...], task: str, client: int) -> int | None:
    """This client's per-task share of `cap` (None = uncapped). The remainder of cap / #tasks goes to tasks
    in a rotation that starts at the client id, so no task is favoured across clients."""
    if cap == 0:
        return None
    k = len(client_tasks)
    base, extra = divmod(cap, k)
    pos = (client_tasks.index(task) - client) % k
    return base + (1 if pos < extra else 0)
