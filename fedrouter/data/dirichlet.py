"""The dirichlet split strategy: each client draws task proportions from a Dirichlet distribution and
every task's training records are shared out to the clients in proportion to them; a client is tested
on the tasks that make up a real share of its training records."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fedrouter.data.shards import count_by_task, shard_order
from fedrouter.utils.seeding import derive_seed

DIRICHLET_MAX_DRAWS = 100  # redraws of the task proportions before the dirichlet split gives up
DIRICHLET_TEST_SHARE = 0.1  # under test_distribution=same, a dirichlet client is tested on tasks >= this share


def dirichlet_train(by_task: dict[str, list[dict]], num_clients: int, alpha: float, min_records: int,
                    cap: int, seed: int) -> list[list[dict]]:
    """Each client's training records: every task's shuffled records cut into contiguous pieces of the
    sizes `_dirichlet_counts` draws (clients in id order), then trimmed proportionally to `cap`."""
    counts = _dirichlet_counts([len(r) for r in by_task.values()], num_clients, alpha, min_records, seed)
    parts: list[list[dict]] = [[] for _ in range(num_clients)]
    for t, (task, recs) in enumerate(by_task.items()):
        shuffled, start = shard_order(recs, seed, "train", task), 0
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
    counts = count_by_task(records, tasks)
    quota = dict(zip(tasks, _largest_remainder(cap, [counts[t] / len(records) for t in tasks]), strict=True))
    kept: dict[str, int] = dict.fromkeys(tasks, 0)
    out = []
    for r in records:
        if kept[r["task"]] < quota[r["task"]]:
            kept[r["task"]] += 1
            out.append(r)
    return out


def held_tasks(records: list[dict], tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks a client has training records of, in the data's order."""
    present = {r["task"] for r in records}
    return tuple(t for t in tasks if t in present)


def dirichlet_test_tasks(records: list[dict], tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks that make up at least DIRICHLET_TEST_SHARE of a client's training records (else its largest)."""
    counts = count_by_task(records, tasks)
    chosen = tuple(t for t in tasks if counts[t] and counts[t] >= DIRICHLET_TEST_SHARE * len(records))
    return chosen or (max(tasks, key=lambda t: counts[t]),)
