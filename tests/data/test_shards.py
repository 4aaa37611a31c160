"""Tests for fedrouter.data.shards: the task-block strategies' tasks per client, uncovered tasks, and the
cutting of a task's records into per-client shards with their caps (partition's behaviour as a whole:
test_splits.py)."""

from __future__ import annotations

import logging

import pytest

from fedrouter.data.shards import add_uncovered, assign_shards, block_tasks, count_by_task, shard_order

TASKS = ("a", "b", "c")


def _records(task: str, n: int) -> list[dict]:
    return [{"instruction": f"{task} {i}", "task": task} for i in range(n)]


@pytest.mark.parametrize("strategy, per_client, expected", [
    ("single", 9, [("a",), ("a",), ("b",), ("b",), ("c",)]),  # 5 clients, 3 blocks: the first two one larger
    ("dual", 9, [("a", "b"), ("a", "b"), ("b", "c"), ("b", "c"), ("c", "a")]),
    ("multi", 3, [("a", "b", "c"), ("a", "b", "c"), ("b", "c", "a"), ("b", "c", "a"), ("c", "a", "b")]),
    ("all", 9, [TASKS] * 5),
])
def test_block_tasks_start_at_the_clients_block(strategy, per_client, expected):
    assert block_tasks(strategy, 5, TASKS, per_client) == expected


@pytest.mark.parametrize("strategy, per_client, message", [
    ("dual", 2, "the 'dual' split (2 tasks per client) needs at least 2 training tasks"),
    ("multi", 2, "tasks_per_client=2 needs at least 2 training tasks"),
    ("multi", 0, "tasks_per_client must be an integer >= 1"),
])
def test_block_tasks_name_what_the_data_lacks(strategy, per_client, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        block_tasks(strategy, 4, ("a",), per_client)


def test_tasks_no_client_holds_become_unseen_in_data_order(caplog):
    with caplog.at_level(logging.WARNING, logger="fedrouter.data"):
        unseen = add_uncovered(("a",), ("a", "b", "c", "d"), ("b", "c", "d"), [("b",), ("d",)])
    assert unseen == ("a", "c")
    assert "no client holds c" in caplog.text
    assert add_uncovered((), TASKS, TASKS, [("a",), ("b", "c")]) == ()


def test_shards_are_disjoint_near_equal_and_seeded():
    by_task = {"a": _records("a", 10), "b": _records("b", 4)}
    parts = assign_shards(by_task, [("a",), ("a", "b"), ("a", "b")], 0, seed=1, kind="train", allow_reuse=False)
    assert [count_by_task(p, ("a", "b")) for p in parts] == [{"a": 4, "b": 0}, {"a": 3, "b": 2}, {"a": 3, "b": 2}]
    names = [r["instruction"] for p in parts for r in p]
    assert sorted(names) == sorted(r["instruction"] for recs in by_task.values() for r in recs)  # each record once
    again = assign_shards(by_task, [("a",), ("a", "b"), ("a", "b")], 0, seed=1, kind="train", allow_reuse=False)
    assert again == parts
    # clients cut from the seeded order of the task's records, in id order
    assert [r["instruction"] for r in parts[0]] == [r["instruction"] for r in shard_order(by_task["a"], 1, "train", "a")[:4]]


def test_a_cap_is_shared_between_the_clients_tasks_in_rotation():
    # cap 3 over two tasks: the extra record goes to task a for client 0 and to task b for client 1
    by_task = {"a": _records("a", 20), "b": _records("b", 20)}
    parts = assign_shards(by_task, [("a", "b"), ("a", "b")], 3, seed=0, kind="train", allow_reuse=False)
    assert [count_by_task(p, ("a", "b")) for p in parts] == [{"a": 2, "b": 1}, {"a": 1, "b": 2}]


def test_too_few_records_are_reused_only_where_allowed(caplog):
    by_task = {"a": _records("a", 2)}
    with pytest.raises(ValueError, match="task 'a' has 2 train records but 3 clients need a disjoint shard"):
        assign_shards(by_task, [("a",)] * 3, 0, seed=0, kind="train", allow_reuse=False)
    with caplog.at_level(logging.WARNING, logger="fedrouter.data"):
        parts = assign_shards(by_task, [("a",)] * 3, 0, seed=0, kind="test", allow_reuse=True)
    order = shard_order(by_task["a"], 0, "test", "a")
    assert parts == [[order[0]], [order[1]], [order[0]]]  # shard j holds record j mod 2
    assert "some records are shared between clients" in caplog.text


def test_shard_order_is_a_permutation_per_seed_kind_and_task():
    recs = _records("a", 30)
    order = shard_order(recs, 0, "train", "a")
    assert sorted(r["instruction"] for r in order) == sorted(r["instruction"] for r in recs)
    assert order == shard_order(recs, 0, "train", "a")
    assert order != shard_order(recs, 1, "train", "a") and order != shard_order(recs, 0, "test", "a")


def test_count_by_task_lists_every_task():
    assert count_by_task(_records("b", 2), TASKS) == {"a": 0, "b": 2, "c": 0}
