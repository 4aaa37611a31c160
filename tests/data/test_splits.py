"""Tests for fedrouter.data.splits: train/test split and the single/dual/all client partitions."""

from __future__ import annotations

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
SAMPLE = SHARED_DATA


def _pool(n_per_task: int = 100, tasks: tuple[str, ...] = TASKS) -> list[dict]:
    return [
        {"instruction": f"{t} input {i}", "response": f"{t} out {i}", "task": t}
        for t in tasks
        for i in range(n_per_task)
    ]


def _data(n_train: int = 80, n_test: int = 20) -> tuple[list[dict], list[dict]]:
    train = [{**r, "instruction": "train " + r["instruction"]} for r in _pool(n_train)]
    test = [{**r, "instruction": "test " + r["instruction"]} for r in _pool(n_test)]
    return train, test


def _split(
    strategy: str = "single", num_clients: int = 8, *, train=None, test=None, **kw
) -> list[ClientData]:
    tr, te = _data()
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
    assert {canonical_split(a) for a in SPLIT_ALIASES} == set(SPLIT_STRATEGIES)
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


@pytest.mark.parametrize("strategy", SPLIT_STRATEGIES)
def test_test_distribution_same_uses_own_tasks_disjointly(strategy):
    clients = _split(strategy, 8, test_distribution="same")
    for c in clients:
        assert set(_tasks_of(c.test)) == set(c.tasks)
    keys = [_key(r) for c in clients for r in c.test]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("strategy", SPLIT_STRATEGIES)
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


@pytest.mark.parametrize("strategy", ["single", "dual", "multitask_clusters"])
@pytest.mark.parametrize("num_clients", [0, 3, 6, -4])
def test_bad_num_clients(strategy, num_clients):
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
