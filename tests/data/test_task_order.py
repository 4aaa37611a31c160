"""The data says which tasks exist; the paper's four keep the reference's client-to-task order."""

from __future__ import annotations

from conftest import tiny_settings
from fedrouter.data.builtin import make_builtin_pool
from fedrouter.data.federated import all_client_data
from fedrouter.data.splits import BENCHMARK_TASKS, pool_tasks


def test_the_benchmarks_tasks_keep_the_reference_order_whatever_the_pool_order():
    pool = make_builtin_pool(20, seed=0)  # shuffled: first appearance is not the benchmark's order
    assert pool_tasks(pool) == BENCHMARK_TASKS == ("qqp", "gigaword", "samsum", "webnlg")
    assert pool_tasks(list(reversed(pool))) == BENCHMARK_TASKS


def test_other_tasks_come_in_order_of_first_appearance():
    records = [{"task": t} for t in ("b", "a", "c", "a", "b")]
    assert pool_tasks(records) == ("b", "a", "c")


def test_single_split_gives_clients_the_reference_tasks(tmp_path):
    clients = all_client_data(tiny_settings(tmp_path, num_clients=8, sample_clients=8))
    assert [c.tasks for c in clients] == [(t,) for t in BENCHMARK_TASKS for _ in range(2)]
    assert all(c.task_names == BENCHMARK_TASKS for c in clients)
