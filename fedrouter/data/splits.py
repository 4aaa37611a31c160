"""Train/test split of a record pool and its partition into per-client shards (single, dual, multi, all, dirichlet)."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrouter.config.common import SPLIT_ALIASES, SPLIT_STRATEGIES, TEST_DISTRIBUTIONS  # noqa: F401 - re-exported
from fedrouter.utils.seeding import derive_seed

logger = logging.getLogger("fedrouter.data")

_SPLIT_VALUES = ("train", "test")
DIRICHLET_MAX_DRAWS = 100  # redraws of the task proportions before the dirichlet split gives up
DIRICHLET_TEST_SHARE = 0.1  # under test_distribution=same, a dirichlet client is tested on tasks >= this share


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
        train_parts = _dirichlet_train(
            {t: train_by_task[t] for t in trained}, num_clients, dirichlet_alpha, dirichlet_min_records,
            max_data_per_client, seed,
        )
        client_tasks = [_held_tasks(part, trained) for part in train_parts]
        own_test = [_dirichlet_test_tasks(part, trained) for part in train_parts]
    else:
        client_tasks = _client_tasks(strategy, num_clients, trained, tasks_per_client)
        unseen = _add_uncovered(unseen, tasks, trained, client_tasks)
        held = {t: train_by_task[t] for t in trained}  # a task no client holds is skipped
        train_parts = _assign(held, client_tasks, max_data_per_client, seed, "train", allow_reuse=False)
        own_test = client_tasks
    test_tasks = own_test if test_distribution == "same" else [tasks] * num_clients
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
    return {"train": _count(client.train, client.task_names), "test": _count(client.test, client.task_names),
            "tasks": list(client.tasks)}


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


def _blocks(num_clients: int, k: int) -> list[int]:
    """Block of each client: k contiguous blocks as even as possible, the first num_clients % k one larger."""
    base, extra = divmod(num_clients, k)
    return [g for g in range(k) for _ in range(base + (1 if g < extra else 0))]


def _client_tasks(strategy: str, num_clients: int, tasks: Sequence[str], per_client: int) -> list[tuple[str, ...]]:
    """The training tasks of each client: its block's task and the next ones (mod T), or every task."""
    if strategy == "all":
        return [tuple(tasks)] * num_clients
    m = {"single": 1, "dual": 2}.get(strategy, per_client)
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"tasks_per_client must be an integer >= 1, got {m!r}")
    if m > len(tasks):
        found = f"the data has {len(tasks)} training task(s) ({', '.join(tasks)})"
        if strategy == "dual":
            raise ValueError(f"the 'dual' split (2 tasks per client) needs at least 2 training tasks, but {found}; "
                             "use single or all")
        raise ValueError(f"tasks_per_client={m} needs at least {m} training tasks, but {found}; "
                         f"allowed tasks_per_client: 1 to {len(tasks)}")
    return [tuple(tasks[(g + j) % len(tasks)] for j in range(m)) for g in _blocks(num_clients, len(tasks))]


def _add_uncovered(unseen: tuple[str, ...], tasks: tuple[str, ...], trained: Sequence[str],
                   client_tasks: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """Training tasks no client holds (fewer clients than tasks) become unseen, with a warning."""
    held = {t for ts in client_tasks for t in ts}
    missing = [t for t in trained if t not in held]
    if not missing:
        return unseen
    logger.warning("%d clients for %d tasks: no client holds %s; they are unseen tasks (tested only under "
                   "test_distribution=all)", len(client_tasks), len(trained), ", ".join(missing))
    return tuple(t for t in tasks if t in unseen or t in missing)


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
        shuffled = _shuffled(recs, seed, kind, task)
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


def _shuffled(records: list[dict], seed: int, kind: str, task: str) -> list[dict]:
    """A task's records in the seeded order its shards are cut from."""
    out = list(records)
    random.Random(f"{seed}:{kind}:{task}").shuffle(out)
    return out


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


# ------------------------------------------------------------------------------------------- dirichlet


def _dirichlet_train(by_task: dict[str, list[dict]], num_clients: int, alpha: float, min_records: int,
                     cap: int, seed: int) -> list[list[dict]]:
    """Each client's training records: every task's shuffled records cut into contiguous pieces of the
    sizes `_dirichlet_counts` draws (clients in id order), then trimmed proportionally to `cap`."""
    counts = _dirichlet_counts([len(r) for r in by_task.values()], num_clients, alpha, min_records, seed)
    parts: list[list[dict]] = [[] for _ in range(num_clients)]
    for t, (task, recs) in enumerate(by_task.items()):
        shuffled, start = _shuffled(recs, seed, "train", task), 0
        for i in range(num_clients):
            parts[i].extend(dict(r) for r in shuffled[start : start + counts[i][t]])
            start += counts[i][t]
    return [_trim(part, list(by_task), cap) for part in parts]


def _dirichlet_counts(sizes: list[int], num_clients: int, alpha: float, min_records: int, seed: int) -> list[list[int]]:
    """Records of each task per client ([client][task]): proportions p_i ~ Dirichlet(alpha * 1_T) per client,
    task t's records shared in proportion to (p_i[t])_i; redrawn until every client has min_records."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0 or not math.isfinite(alpha):
        raise ValueError(f"dirichlet_alpha must be a number > 0, got {alpha!r}")
    if isinstance(min_records, bool) or not isinstance(min_records, int) or min_records < 1:
        raise ValueError(f"dirichlet_min_records must be an integer >= 1, got {min_records!r}")
    rng = np.random.default_rng(derive_seed(seed, 0xD1C))
    if sum(sizes) >= num_clients * min_records:
        for _ in range(DIRICHLET_MAX_DRAWS):
            p = rng.dirichlet(np.full(len(sizes), float(alpha)), size=num_clients)
            totals = p.sum(axis=0)
            if not (np.all(np.isfinite(p)) and np.all(totals > 0)):
                continue  # a task no client drew any weight for (tiny alpha): draw again
            columns = [_largest_remainder(n, p[:, t] / totals[t]) for t, n in enumerate(sizes)]
            counts = [[col[i] for col in columns] for i in range(num_clients)]
            if min(sum(row) for row in counts) >= min_records:
                return counts
    raise ValueError(
        f"the dirichlet split found no draw (of {DIRICHLET_MAX_DRAWS}) giving each of num_clients={num_clients} "
        f"clients at least dirichlet_min_records={min_records} training records with dirichlet_alpha={alpha} "
        f"from {sum(sizes)} training records over {len(sizes)} tasks ({sizes}); raise dirichlet_alpha, lower "
        "dirichlet_min_records or num_clients, or provide more data"
    )


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Integer shares of `total` proportional to `weights` (summing to 1): floors, then one more each to the
    largest remainders (ties to the lower index)."""
    exact = [total * float(w) for w in weights]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda j: (out[j] - exact[j], j))
    for j in order[: total - sum(out)]:
        out[j] += 1
    return out


def _trim(records: list[dict], tasks: Sequence[str], cap: int) -> list[dict]:
    """At most `cap` records (0 = all), each task cut to its largest-remainder share of cap."""
    if cap == 0 or len(records) <= cap:
        return records
    counts = _count(records, tasks)
    quota = dict(zip(tasks, _largest_remainder(cap, [counts[t] / len(records) for t in tasks]), strict=True))
    kept: dict[str, int] = dict.fromkeys(tasks, 0)
    out = []
    for r in records:
        if kept[r["task"]] < quota[r["task"]]:
            kept[r["task"]] += 1
            out.append(r)
    return out


def _held_tasks(records: list[dict], tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks a client has training records of, in the data's order."""
    present = {r["task"] for r in records}
    return tuple(t for t in tasks if t in present)


def _dirichlet_test_tasks(records: list[dict], tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks that make up at least DIRICHLET_TEST_SHARE of a client's training records (else its largest)."""
    counts = _count(records, tasks)
    chosen = tuple(t for t in tasks if counts[t] and counts[t] >= DIRICHLET_TEST_SHARE * len(records))
    return chosen or (max(tasks, key=lambda t: counts[t]),)


# --------------------------------------------------------------------------------------------- logging


def _count(records: list[dict], tasks: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(tasks, 0)
    for r in records:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return counts


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
