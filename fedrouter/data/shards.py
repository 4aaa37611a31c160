"""Client shards under the task-block strategies (single, dual, multi, all): which training tasks each
client holds, and how a task's records are cut into disjoint per-client shards, trimmed to a per-task
quota under a cap (the test shards of every strategy are cut the same way)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

logger = logging.getLogger("fedrouter.data")


def _blocks(num_clients: int, k: int) -> list[int]:
    """Block of each client: k contiguous blocks as even as possible, the first num_clients % k one larger."""
    base, extra = divmod(num_clients, k)
    return [g for g in range(k) for _ in range(base + (1 if g < extra else 0))]


def block_tasks(strategy: str, num_clients: int, tasks: Sequence[str], per_client: int) -> list[tuple[str, ...]]:
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


def add_uncovered(unseen: tuple[str, ...], tasks: tuple[str, ...], trained: Sequence[str],
                  client_tasks: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """Training tasks no client holds (fewer clients than tasks) become unseen, with a warning."""
    held = {t for ts in client_tasks for t in ts}
    missing = [t for t in trained if t not in held]
    if not missing:
        return unseen
    logger.warning("%d clients for %d tasks: no client holds %s; they are unseen tasks (tested only under "
                   "test_distribution=all)", len(client_tasks), len(trained), ", ".join(missing))
    return tuple(t for t in tasks if t in unseen or t in missing)


def assign_shards(
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
        shuffled = shard_order(recs, seed, kind, task)
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


def shard_order(records: list[dict], seed: int, kind: str, task: str) -> list[dict]:
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


def count_by_task(records: list[dict], tasks: Sequence[str]) -> dict[str, int]:
    """Records per task, every task of `tasks` listed (in its order), with 0 where it has none."""
    counts = dict.fromkeys(tasks, 0)
    for r in records:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return counts
