"""Tests for fedrouter.data.dirichlet, the dirichlet client split (through partition): seeded, disjoint,
complete, minimum sizes, and alpha's effect."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from fedrouter.data.dirichlet import DIRICHLET_TEST_SHARE
from fedrouter.data.splits import ClientData, partition

TASKS = ("t0", "t1", "t2", "t3", "t4")


def _pool(n_per_task: int, tag: str, tasks: tuple[str, ...] = TASKS) -> list[dict]:
    return [{"instruction": f"{tag} {t} input {i}", "response": f"{t} out {i}", "task": t}
            for t in tasks for i in range(n_per_task)]


def _split(num_clients: int = 10, *, n_train: int = 100, tasks: tuple[str, ...] = TASKS, **kw) -> list[ClientData]:
    opts = {"max_data_per_client": 0, "max_eval_size": 0, "test_distribution": "same", "seed": 0,
            "dirichlet_alpha": 0.5, "dirichlet_min_records": 10, **kw}
    return partition(_pool(n_train, "train", tasks), _pool(20, "test", tasks), "dirichlet", num_clients,
                     tasks=tasks, **opts)


def _counts(records: list[dict]) -> Counter:
    return Counter(r["task"] for r in records)


def _entropy(records: list[dict]) -> float:
    total = len(records)
    return -sum(n / total * math.log(n / total) for n in _counts(records).values())


def test_reproducible_for_a_seed_and_different_for_another():
    a = _split(seed=3)
    assert a == _split(seed=3)
    b = _split(seed=4)
    assert [_counts(c.train) for c in a] != [_counts(c.train) for c in b]


@pytest.mark.parametrize("alpha", [0.05, 0.5, 5.0])
def test_train_shards_are_disjoint_complete_and_big_enough(alpha):
    clients = _split(dirichlet_alpha=alpha, dirichlet_min_records=25)
    keys = [(r["instruction"], r["task"]) for c in clients for r in c.train]
    assert len(keys) == len(set(keys)) == 5 * 100  # every training record used once
    assert min(len(c.train) for c in clients) >= 25
    for c in clients:
        assert c.tasks == tuple(t for t in TASKS if _counts(c.train)[t])  # the tasks it holds, data order
        assert c.unseen_tasks == () and c.task_names == TASKS


def test_impossible_minimum_is_a_clear_error():
    # 10 clients * 60 > 500 records: no draw can work.
    with pytest.raises(ValueError, match=r"dirichlet_min_records=60 .*dirichlet_alpha=0.5 from 500 training records"):
        _split(dirichlet_min_records=60)
    # Possible in total, but only with near-equal shares, which a tiny alpha never draws.
    with pytest.raises(ValueError, match=r"no draw \(of 100\).*num_clients=10.*dirichlet_min_records=49"):
        _split(dirichlet_alpha=0.01, dirichlet_min_records=49)


@pytest.mark.parametrize("bad", [{"dirichlet_alpha": 0.0}, {"dirichlet_alpha": -1.0}, {"dirichlet_min_records": 0}])
def test_bad_settings(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        _split(**bad)


def test_task_entropy_rises_with_alpha():
    means = []
    for alpha in (0.05, 1.0, 100.0):
        clients = _split(dirichlet_alpha=alpha, seed=7)
        means.append(sum(_entropy(c.train) for c in clients) / len(clients))
    assert means[0] < means[1] < means[2]
    assert means[0] < 0.5 and means[2] > 0.95 * math.log(len(TASKS))  # near single, near all


def test_tested_on_tasks_with_a_tenth_of_its_training_records_or_on_every_task():
    for c in _split(dirichlet_alpha=0.3):
        counts = _counts(c.train)
        expected = {t for t in TASKS if counts[t] >= DIRICHLET_TEST_SHARE * len(c.train)}
        assert set(_counts(c.test)) == expected
    for c in _split(dirichlet_alpha=0.3, test_distribution="all", max_eval_size=10):
        assert _counts(c.test) == {t: 2 for t in TASKS}


def test_cap_keeps_the_clients_proportions():
    full = _split(dirichlet_alpha=1.0)
    capped = _split(dirichlet_alpha=1.0, max_data_per_client=20)
    for a, b in zip(full, capped, strict=True):
        assert len(b.train) == min(20, len(a.train))
        for t, n in _counts(b.train).items():
            assert abs(n - 20 * _counts(a.train)[t] / len(a.train)) < 1 or len(a.train) <= 20


def test_unseen_tasks_are_left_out_of_the_proportions():
    clients = _split(unseen_tasks="t2", test_distribution="all")
    assert all(c.unseen_tasks == ("t2",) and "t2" not in _counts(c.train) for c in clients)
    assert all(_counts(c.test)["t2"] > 0 for c in clients)
    assert sum(len(c.train) for c in clients) == 4 * 100
