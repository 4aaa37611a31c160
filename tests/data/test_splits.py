"""Tests for fedrouter.data.splits: train/test split, the single/dual/multi/all partitions over any number of
tasks, and unseen tasks."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter

import pytest

from conftest import SHARED_DATA
from fedrouter.data.splits import (
    SPLIT_ALIASES,
    SPLIT_STRATEGIES,
    ClientData,
    canonical_split,
    partition,
    train_test_split,
)

TASKS = ("qqp", "gigaword", "samsum", "webnlg")
BLOCK_SPLITS = ("single", "dual", "multi", "all")  # the splits that give clients tasks by block
SAMPLE = SHARED_DATA


def _pool(n_per_task: int = 100, tasks: tuple[str, ...] = TASKS) -> list[dict]:
    return [
        {"instruction": f"{t} input {i}", "response": f"{t} out {i}", "task": t}
        for t in tasks
        for i in range(n_per_task)
    ]


def _data(n_train: int = 80, n_test: int = 20, tasks: tuple[str, ...] = TASKS) -> tuple[list[dict], list[dict]]:
    train = [{**r, "instruction": "train " + r["instruction"]} for r in _pool(n_train, tasks)]
    test = [{**r, "instruction": "test " + r["instruction"]} for r in _pool(n_test, tasks)]
    return train, test


def _split(
    strategy: str = "single", num_clients: int = 8, *, train=None, test=None, **kw
) -> list[ClientData]:
    tr, te = _data(tasks=kw.get("tasks", TASKS))
    opts = {"max_data_per_client": 0, "max_eval_size": 0, "test_distribution": "same", "seed": 0, "tasks": TASKS, **kw}
    return partition(
        train if train is not None else tr, test if test is not None else te, strategy, num_clients, **opts
    )


def _key(r: dict) -> tuple[str, str, str]:
    return r["instruction"], r["response"], r["task"]


def _tasks_of(records: list[dict]) -> Counter:
    return Counter(r["task"] for r in records)


def test_builtin_task_order_matches():
    builtin = pytest.importorskip("fedrouter.data.builtin")
    assert tuple(builtin.TASKS) == TASKS


# ---------------------------------------------------------------------------------- train/test split


def test_train_test_split_is_stratified_and_deterministic():
    pool = _pool(50)
    train, test = train_test_split(pool, 0.8, seed=3)
    assert _tasks_of(train) == {t: 40 for t in TASKS}
    assert _tasks_of(test) == {t: 10 for t in TASKS}
    assert not {_key(r) for r in train} & {_key(r) for r in test}
    assert (train, test) == train_test_split(pool, 0.8, seed=3)
    assert train != train_test_split(pool, 0.8, seed=4)[0]


def test_split_column_is_honoured_and_dropped():
    pool = [{**r, "split": "test" if i % 5 == 0 else "train"} for i, r in enumerate(_pool(10))]
    train, test = train_test_split(pool, 0.5, seed=0)  # train_split is ignored
    assert len(train) == 32 and len(test) == 8
    assert all("split" not in r for r in train + test)
    assert [r["instruction"] for r in test] == [r["instruction"] for r in pool if r["split"] == "test"]


def test_partial_split_column_falls_back_to_train_split():
    pool = _pool(10)
    pool[0] = {**pool[0], "split": "test"}
    train, test = train_test_split(pool, 0.8, seed=0)
    assert len(train) == 32 and len(test) == 8 and all("split" not in r for r in train + test)


def test_bad_train_split():
    with pytest.raises(ValueError, match="train_split"):
        train_test_split(_pool(5), 1.0, seed=0)


# ------------------------------------------------------------------------------------------ strategies


def test_aliases_and_bad_name():
    assert {canonical_split(a) for a in SPLIT_ALIASES} == {"single", "dual", "all"}
    assert set(SPLIT_STRATEGIES) == {"single", "dual", "multi", "all", "dirichlet"}
    assert canonical_split("multitask_clusters") == "single"
    assert canonical_split("multitask_multi_domain") == "dual"
    assert canonical_split("multitask_iid") == "all"
    with pytest.raises(ValueError, match="single"):
        canonical_split("clusters")
    # partition accepts the reference names too.
    assert [c.tasks for c in _split("multitask_clusters")] == [c.tasks for c in _split("single")]


@pytest.mark.parametrize(
    "strategy,num_clients", [("single", 8), ("dual", 8), ("all", 8), ("all", 5), ("single", 4)]
)
def test_train_shards_are_disjoint_and_cover_the_data(strategy, num_clients):
    clients = _split(strategy, num_clients)
    keys = [_key(r) for c in clients for r in c.train]
    assert len(keys) == len(set(keys))  # no record in two clients' train sets (or twice in one)
    assert len(keys) == 4 * 80  # without caps, every training record is used
    assert [c.client_id for c in clients] == list(range(num_clients))


def test_single_clients_hold_one_task():
    clients = _split("single", 8)
    for c in clients:
        assert c.tasks == (TASKS[c.client_id // 2],)
        assert set(_tasks_of(c.train)) == set(c.tasks)
        assert len(c.train) == 40  # 80 records of the task cut into 2 shards


def test_dual_clients_hold_two_adjacent_tasks_half_and_half():
    clients = _split("dual", 8)
    for c in clients:
        g = c.client_id // 2
        assert c.tasks == (TASKS[g], TASKS[(g + 1) % 4])
        counts = _tasks_of(c.train)
        assert set(counts) == set(c.tasks)
        assert counts[TASKS[g]] == counts[TASKS[(g + 1) % 4]] == 20  # each task cut into 2n = 4 shards


def test_all_clients_hold_every_task():
    for c in _split("all", 8):
        assert c.tasks == TASKS
        assert _tasks_of(c.train) == {t: 10 for t in TASKS}


# --------------------------------------------------------------------------------------------- test sets


@pytest.mark.parametrize("strategy", BLOCK_SPLITS)
def test_test_distribution_same_uses_own_tasks_disjointly(strategy):
    clients = _split(strategy, 8, test_distribution="same")
    for c in clients:
        assert set(_tasks_of(c.test)) == set(c.tasks)
    keys = [_key(r) for c in clients for r in c.test]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("strategy", (*BLOCK_SPLITS, "dirichlet"))
def test_test_distribution_all_covers_every_task(strategy):
    clients = _split(strategy, 8, test_distribution="all", max_eval_size=8)
    for c in clients:
        assert _tasks_of(c.test) == {t: 2 for t in TASKS}  # balanced across the four tasks
    keys = [_key(r) for c in clients for r in c.test]
    assert len(keys) == len(set(keys))  # 20 test records per task are enough for disjoint shards


def test_test_records_reused_when_too_few_for_disjoint_shards():
    train, test = _data()
    test = [r for r in test if r["task"] != "qqp"] + [r for r in test if r["task"] == "qqp"][:3]
    clients = _split("single", 8, train=train, test=test, test_distribution="all")
    assert all(_tasks_of(c.test)["qqp"] >= 1 for c in clients)


def test_test_distribution_invalid():
    with pytest.raises(ValueError, match="test_distribution"):
        _split(test_distribution="global")


# ------------------------------------------------------------------------------------------------- caps


def test_caps_respected_and_balanced():
    for c in _split("dual", 8, max_data_per_client=11, max_eval_size=7):
        assert len(c.train) == 11 and len(c.test) == 7
        assert sorted(_tasks_of(c.train).values()) == [5, 6]
        assert sorted(_tasks_of(c.test).values()) == [3, 4]
    for c in _split("all", 4, max_data_per_client=8, test_distribution="all", max_eval_size=4):
        assert _tasks_of(c.train) == {t: 2 for t in TASKS}
        assert _tasks_of(c.test) == {t: 1 for t in TASKS}
    # A cap larger than the shard changes nothing.
    assert [len(c.train) for c in _split("single", 8, max_data_per_client=1000)] == [40] * 8


# ----------------------------------------------------------------------------------------- determinism


def test_deterministic_and_seed_sensitive():
    a = _split("dual", 8, seed=1)
    assert a == _split("dual", 8, seed=1)
    b = _split("dual", 8, seed=2)
    assert [c.train for c in a] != [c.train for c in b]
    assert {_key(r) for r in a[0].train} != {_key(r) for r in b[0].train}  # different shards, not just order


def test_client_records_are_shuffled():
    c = _split("dual", 8)[0]
    tasks_in_order = [r["task"] for r in c.train]
    # Not grouped by task: the two tasks alternate somewhere in the first half.
    assert len(set(tasks_in_order[: len(tasks_in_order) // 2])) == 2


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("strategy", ["single", "dual", "multitask_clusters", "multi", "dirichlet"])
@pytest.mark.parametrize("num_clients", [0, -4])
def test_bad_num_clients(strategy, num_clients):  # any positive number is fine (no multiple-of-T rule)
    with pytest.raises(ValueError, match="num_clients"):
        _split(strategy, num_clients)


def test_all_accepts_any_positive_num_clients():
    assert len(_split("all", 3)) == 3
    with pytest.raises(ValueError, match="num_clients"):
        _split("all", 0)


def test_too_few_train_records_names_the_task():
    train, test = _data()
    train = [r for r in train if r["task"] != "samsum"] + [r for r in train if r["task"] == "samsum"][:3]
    with pytest.raises(ValueError, match=r"'samsum' has 3 train records .*at least 4"):
        _split("dual", 8, train=train, test=test)  # samsum is held by 2n = 4 clients


def test_missing_test_task_is_an_error():
    train, test = _data()
    test = [r for r in test if r["task"] != "webnlg"]
    with pytest.raises(ValueError, match=r"'webnlg' has 0 test records"):
        _split("single", 8, train=train, test=test, test_distribution="all")


def test_unknown_task_is_an_error():
    train, test = _data()
    with pytest.raises(ValueError, match="mnli"):
        _split(train=train + [{"instruction": "x", "response": "y", "task": "mnli"}], test=test)


# ------------------------------------------------------------------------------------------ real sample


@pytest.mark.skipif(
    not (SAMPLE / "qqp.jsonl").is_file(), reason=f"real multitask sample not found at {SAMPLE}"
)
def test_real_sample_paper_setting():
    from fedrouter.data.sources import load_pool

    train, test = train_test_split(load_pool(str(SAMPLE), 0, 0), 0.8, seed=0)
    assert _tasks_of(train) == {t: 2000 for t in TASKS}
    clients = partition(
        train, test, "single", 8, max_data_per_client=0, max_eval_size=40, test_distribution="all", seed=111,
        tasks=TASKS,
    )
    assert [len(c.train) for c in clients] == [1000] * 8
    assert all(_tasks_of(c.test) == {t: 10 for t in TASKS} for c in clients)


# --------------------------------------------------------------------------- today's four-task partitions

# sha256 of the partitions the four-task single/dual/all splits gave before they took any number of tasks
# (strategy, clients, max_data_per_client, max_eval_size, test_distribution, seed): they may not change.
FOUR_TASK_PARTITIONS = {
    ("single", 8, 0, 0, "same", 0): "fe6580b7da70d04f0a7accad95ca71dfb7566009d2a5ec1dcf8b640a21222bbd",
    ("dual", 8, 11, 7, "same", 111): "bef55f0a89f3d7c920261a3178d0b71e72f2399db3a51cbb34566574cb21277a",
    ("all", 8, 0, 7, "all", 0): "332c09a58315d1d6e6abae833dadf822a790ebb895a3110fa2811aa879aee105",
    ("single", 12, 0, 0, "all", 111): "fe2228f0ee8b2c253f46fccf7a84140735295d207577d95546ddf67190a65c60",
    ("dual", 16, 11, 0, "same", 0): "35a8f2ed92c333075e7d11df251aeff795635ab93940d6a3e13882577a4eebb1",
    ("all", 4, 11, 7, "same", 111): "861c0e27faae5a3328a90c58c1539a17b811fea590fc5b70f9aefa5ec94c6e0a",
    ("dual", 4, 0, 7, "all", 0): "a0c6c1d9877695228f77df8119502c40b4f5b847ee07d179d9d974110aafb9e1",
    ("single", 16, 0, 7, "same", 111): "65ae42627ef6cdf8152ee6fd5cb66834fa06f8f67084035eabbfdeeaebecc583",
}


def _digest(clients: list[ClientData]) -> str:
    rows = [[c.client_id, c.tasks, c.train, c.test, c.task_names] for c in clients]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("key", FOUR_TASK_PARTITIONS)
def test_four_task_partitions_are_unchanged(key):
    strategy, n, cap, eval_cap, tested_on, seed = key
    clients = _split(strategy, n, max_data_per_client=cap, max_eval_size=eval_cap, test_distribution=tested_on, seed=seed)
    assert _digest(clients) == FOUR_TASK_PARTITIONS[key]
    assert all(c.unseen_tasks == () for c in clients)


@pytest.mark.parametrize("n", [4, 8, 12])
def test_dual_is_multi_with_two_tasks_per_client(n):
    assert _split("dual", n) == _split("multi", n, tasks_per_client=2) == _split("multi", n)
    assert _split("single", n) == _split("multi", n, tasks_per_client=1)


# ----------------------------------------------------------------------------------- any number of tasks

TASKS6 = ("t0", "t1", "t2", "t3", "t4", "t5")


def _assert_disjoint_and_complete(clients: list[ClientData], n_records: int) -> None:
    keys = [_key(r) for c in clients for r in c.train]
    assert len(keys) == len(set(keys)) == n_records


def test_single_spreads_clients_evenly_in_blocks():
    clients = _split("single", 6)  # 6 clients over 4 tasks: 2, 2, 1, 1
    assert [c.tasks for c in clients] == [(t,) for t in ("qqp", "qqp", "gigaword", "gigaword", "samsum", "webnlg")]
    assert Counter(c.tasks[0] for c in clients) == {"qqp": 2, "gigaword": 2, "samsum": 1, "webnlg": 1}
    assert [len(c.train) for c in clients] == [40, 40, 40, 40, 80, 80]
    assert all(set(_tasks_of(c.train)) == set(c.tasks) for c in clients)
    _assert_disjoint_and_complete(clients, 4 * 80)


def test_single_with_fewer_clients_than_tasks_warns_and_leaves_the_task_unseen(caplog):
    with caplog.at_level(logging.WARNING, logger="fedrouter.data"):
        same = _split("single", 3)
    assert "no client holds webnlg" in caplog.text
    assert [c.tasks for c in same] == [("qqp",), ("gigaword",), ("samsum",)]
    assert all(c.unseen_tasks == ("webnlg",) and c.task_names == TASKS for c in same)
    assert all("webnlg" not in _tasks_of(c.train) and "webnlg" not in _tasks_of(c.test) for c in same)
    _assert_disjoint_and_complete(same, 3 * 80)
    tested_on_all = _split("single", 3, test_distribution="all")
    assert all(set(_tasks_of(c.test)) == set(TASKS) for c in tested_on_all)


def test_multi_three_of_six_tasks():
    clients = _split("multi", 6, tasks_per_client=3, tasks=TASKS6)
    for c in clients:
        assert c.tasks == tuple(TASKS6[(c.client_id + j) % 6] for j in range(3))
        assert set(_tasks_of(c.train)) == set(c.tasks) and set(_tasks_of(c.test)) == set(c.tasks)
        assert set(_tasks_of(c.train).values()) <= {26, 27}  # each task's 80 records cut into 3 shards
    _assert_disjoint_and_complete(clients, 6 * 80)
    # 9 clients: blocks of 2, 2, 2, 1, 1, 1 clients; client 8 starts at t5 and wraps round to t0, t1.
    nine = _split("multi", 9, tasks_per_client=3, tasks=TASKS6)
    assert [c.tasks[0] for c in nine] == ["t0", "t0", "t1", "t1", "t2", "t2", "t3", "t4", "t5"]
    assert nine[8].tasks == ("t5", "t0", "t1")
    _assert_disjoint_and_complete(nine, 6 * 80)


@pytest.mark.parametrize("tasks", [TASKS6[:3], TASKS6])
@pytest.mark.parametrize("n", [2, 5, 8])
def test_all_over_any_number_of_tasks(tasks, n):
    clients = _split("all", n, tasks=tasks, test_distribution="all")
    for c in clients:
        assert c.tasks == tasks and set(_tasks_of(c.train)) == set(tasks) == set(_tasks_of(c.test))
        assert max(_tasks_of(c.train).values()) - min(_tasks_of(c.train).values()) <= 1
    _assert_disjoint_and_complete(clients, len(tasks) * 80)


@pytest.mark.parametrize("strategy", ["single", "all", "multi"])
def test_one_task(strategy):
    clients = _split(strategy, 3, tasks=("only",), tasks_per_client=1)
    assert all(c.tasks == ("only",) for c in clients)
    _assert_disjoint_and_complete(clients, 80)


def test_more_tasks_per_client_than_tasks_is_an_error():
    with pytest.raises(ValueError, match=r"tasks_per_client=5 needs at least 5 training tasks.*allowed tasks_per_client: 1 to 4"):
        _split("multi", 8, tasks_per_client=5)
    with pytest.raises(ValueError, match="'dual' split"):
        _split("dual", 2, tasks=("only",))
    with pytest.raises(ValueError, match="tasks_per_client must be an integer >= 1"):
        _split("multi", 8, tasks_per_client=0)


def test_each_client_task_counts_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="fedrouter.data"):
        _split("dual", 4, test_distribution="all")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("client ")]
    assert len(lines) == 4
    assert lines[0] == "client 0: train qqp=40 gigaword=40 | test qqp=5 gigaword=5 samsum=5 webnlg=5"


# --------------------------------------------------------------------------------------------- unseen tasks


@pytest.mark.parametrize("strategy", BLOCK_SPLITS)
def test_named_unseen_tasks_are_never_trained_and_tested_only_under_all(strategy):
    same = _split(strategy, 6, unseen_tasks="webnlg, qqp")
    assert all(c.unseen_tasks == ("qqp", "webnlg") and c.task_names == TASKS for c in same)
    for c in same:
        assert set(c.tasks) <= {"gigaword", "samsum"}
        assert not {"qqp", "webnlg"} & set(_tasks_of(c.train)) and not {"qqp", "webnlg"} & set(_tasks_of(c.test))
    _assert_disjoint_and_complete(same, 2 * 80)  # the other tasks' records are all used
    for c in _split(strategy, 6, unseen_tasks="webnlg,qqp", test_distribution="all"):
        assert set(_tasks_of(c.test)) == set(TASKS)


def test_auto_unseen_tasks_are_those_with_test_records_only():
    train, test = _data()
    train = [r for r in train if r["task"] != "samsum"]
    clients = _split("single", 3, train=train, test=test, unseen_tasks="auto", test_distribution="all")
    assert [c.tasks for c in clients] == [("qqp",), ("gigaword",), ("webnlg",)]
    assert all(c.unseen_tasks == ("samsum",) and _tasks_of(c.test)["samsum"] > 0 for c in clients)
    assert _split("single", 4, unseen_tasks="auto")[0].unseen_tasks == ()  # every task has training data
    with pytest.raises(ValueError, match=r"'samsum' have 0 train records; name them in unseen_tasks"):
        _split("single", 3, train=train, test=test)


def test_unknown_unseen_task_is_an_error_listing_the_tasks():
    with pytest.raises(ValueError, match=r"unseen_tasks names unknown task\(s\) mnli; the data's tasks are qqp, gigaword, samsum, webnlg"):
        _split("single", 4, unseen_tasks="qqp,mnli")
    with pytest.raises(ValueError, match="leaves no task to train on"):
        _split("all", 4, unseen_tasks=",".join(TASKS))
