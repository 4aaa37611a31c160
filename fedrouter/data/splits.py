"""Train/test split of a record pool and its partition into per-client shards (single, dual, multi, all, dirichlet).

`partition` checks the settings and the data, then cuts the shards with the strategy's module: shards.py
for the task-block strategies (single, dual, multi, all; and every strategy's test shards), dirichlet.py
for dirichlet."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from fedrouter.config.common import SPLIT_ALIASES, SPLIT_STRATEGIES, TEST_DISTRIBUTIONS  # noqa: F401 - re-exported
from fedrouter.data.dirichlet import dirichlet_test_tasks, dirichlet_train, held_tasks
from fedrouter.data.shards import add_uncovered, assign_shards, block_tasks, count_by_task

logger = logging.getLogger("fedrouter.data")

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
    tasks_per_client: int = 2,
    dirichlet_alpha: float = 0.5,
    dirichlet_min_records: int = 10,
    unseen_tasks: str | Sequence[str] = "",
) -> list[ClientData]:
    """Give each of `num_clients` clients disjoint train shards of its tasks and a test set.

    The training tasks are the data's T tasks less the unseen ones (`unseen_tasks`, see `resolve_unseen`).
    Clients fall in T contiguous blocks as even as possible (the first num_clients % T blocks one client
    larger; with num_clients = n * T, client i is in block i // n); block g starts at training task g.

    single: client i holds its block's task; each task is cut into one shard per client holding it.
            With fewer clients than tasks, the tasks no client holds become unseen (with a warning).
    multi:  client i holds `tasks_per_client` consecutive tasks from its block's task (mod T), one shard each.
    dual:   multi with tasks_per_client = 2.
    all:    every client holds a disjoint shard of every training task.
    dirichlet: client i draws task proportions p_i ~ Dirichlet(dirichlet_alpha * 1_T); each task's records
            are shared out to the clients in proportion to their p_i[t] (largest remainders), redrawn until
            every client has at least `dirichlet_min_records` training records. Small alpha approaches
            single, large alpha approaches all. Under test_distribution 'same' a client is tested on the
            tasks that make up at least 10% of its training records (its largest task if none does).
    test_distribution 'same' tests a client on its own tasks (never on unseen ones), 'all' on every task,
    unseen ones included. Caps (0 = none) keep the per-task balance (dirichlet: the client's proportions).
    Everything is deterministic in `seed`.
    """
    tasks = tuple(tasks)
    strategy = canonical_split(strategy)
    _check_settings(num_clients, test_distribution, max_data_per_client, max_eval_size)
    train_by_task = _group(train, tasks, "train")
    test_by_task = _group(test, tasks, "test")
    unseen = resolve_unseen(unseen_tasks, tasks, train_by_task, test_by_task)
    trained = _training_tasks(tasks, unseen, train_by_task)
    if strategy == "dirichlet":
        train_parts = dirichlet_train(
            {t: train_by_task[t] for t in trained}, num_clients, dirichlet_alpha, dirichlet_min_records,
            max_data_per_client, seed,
        )
        client_tasks = [held_tasks(part, trained) for part in train_parts]
        own_test = [dirichlet_test_tasks(part, trained) for part in train_parts]
    else:
        client_tasks = block_tasks(strategy, num_clients, trained, tasks_per_client)
        unseen = add_uncovered(unseen, tasks, trained, client_tasks)
        held = {t: train_by_task[t] for t in trained}  # a task no client holds is skipped
        train_parts = assign_shards(held, client_tasks, max_data_per_client, seed, "train", allow_reuse=False)
        own_test = client_tasks
    test_tasks = own_test if test_distribution == "same" else [tasks] * num_clients
    # Test shards are disjoint whenever a task has at least one test record per client that needs it; with
    # fewer, records are reused across clients (evaluation only, so no training data leaks) rather than
    # leaving a client without test data for a task it must be scored on.
    test_parts = assign_shards(test_by_task, test_tasks, max_eval_size, seed, "test", allow_reuse=True)

    clients = []
    for i in range(num_clients):
        tr, te = train_parts[i], test_parts[i]
        # Shards are grouped by task; shuffle so batches and evaluation order mix the client's tasks.
        random.Random(f"{seed}:client:{i}:train").shuffle(tr)
        random.Random(f"{seed}:client:{i}:test").shuffle(te)
        clients.append(ClientData(client_id=i, tasks=client_tasks[i], train=tr, test=te, task_names=tasks,
                                  unseen_tasks=unseen))
    _log_partition(clients, strategy, test_distribution)
    return clients


def resolve_unseen(
    spec: str | Sequence[str], tasks: Sequence[str], train_by_task: dict[str, list], test_by_task: dict[str, list]
) -> tuple[str, ...]:
    """The tasks `unseen_tasks` names, in the data's task order: '' = none, comma-separated task names, and
    'auto' = every task that has test records but no training records. Unknown names are an error."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    chosen: set[str] = set()
    unknown = []
    for name in filter(None, names):
        if name.lower() == "auto":
            chosen |= {t for t in tasks if test_by_task.get(t) and not train_by_task.get(t)}
        elif name in tasks:
            chosen.add(name)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unseen_tasks names unknown task(s) {', '.join(unknown)}; the data's tasks are "
                         f"{', '.join(tasks)} (or auto: every task with test records but no training records)")
    return tuple(t for t in tasks if t in chosen)


def task_counts(client: ClientData) -> dict:
    """{"train": {task: n}, "test": {task: n}, "tasks": [...]}: a client's records per task (data order)."""
    return {"train": count_by_task(client.train, client.task_names),
            "test": count_by_task(client.test, client.task_names), "tasks": list(client.tasks)}


# -------------------------------------------------------------------------------------------- helpers


def _without_split(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "split"}


def _check_settings(num_clients: int, test_distribution: str, max_data_per_client: int, max_eval_size: int) -> None:
    """Errors for settings that do not depend on the data."""
    if test_distribution not in TEST_DISTRIBUTIONS:
        raise ValueError(
            f"test_distribution must be one of {', '.join(TEST_DISTRIBUTIONS)}, got {test_distribution!r}"
        )
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"num_clients must be a positive integer, got {num_clients!r}")
    for label, cap in (("max_data_per_client", max_data_per_client), ("max_eval_size", max_eval_size)):
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"{label} must be an integer >= 0 (0 = no cap), got {cap!r}")


def _training_tasks(tasks: tuple[str, ...], unseen: tuple[str, ...], train_by_task: dict) -> tuple[str, ...]:
    """The tasks clients may train on; each must have training records."""
    trained = tuple(t for t in tasks if t not in unseen)
    if not trained:
        raise ValueError(f"unseen_tasks leaves no task to train on; the data's tasks are {', '.join(tasks)}")
    empty = [t for t in trained if not train_by_task[t]]
    if empty:
        raise ValueError(
            f"task(s) {', '.join(map(repr, empty))} have 0 train records; name them in unseen_tasks (or set "
            "unseen_tasks=auto) to test on them without training, or provide training data"
        )
    return trained


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


# --------------------------------------------------------------------------------------------- logging


def _counts_text(counts: dict[str, int]) -> str:
    return " ".join(f"{t}={n}" for t, n in counts.items() if n) or "none"


def _log_partition(clients: list[ClientData], strategy: str, test_distribution: str) -> None:
    """One summary line, then one line per client with its train and test records per task."""
    unseen = clients[0].unseen_tasks if clients else ()
    logger.info(
        "partition %s/%s: %d clients, train sizes %s, test sizes %s%s",
        strategy,
        test_distribution,
        len(clients),
        [len(c.train) for c in clients],
        [len(c.test) for c in clients],
        f", unseen tasks {', '.join(unseen)}" if unseen else "",
    )
    for c in clients:
        counts = task_counts(c)
        logger.info("client %d: train %s | test %s", c.client_id, _counts_text(counts["train"]),
                    _counts_text(counts["test"]))
