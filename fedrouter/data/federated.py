"""From settings to one client's data: pool -> train/test split -> the client's partition."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fedrouter.config import TaskSelection
from fedrouter.data.sources import SourceOptions, load_pool
from fedrouter.data.splits import ClientData, canonical_split, partition, pool_tasks, task_counts, train_test_split
from fedrouter.utils import process_state


@dataclass(frozen=True)
class PartitionSettings:
    """The run settings a partition depends on, named as in RunConfig. No defaults: the values are always
    a run's own (`from_config`). Hashable, so it keys the partition cache."""

    dataset_name: str
    dataset_sample: int
    seed: int
    train_split: float
    split_strategy: str
    num_clients: int
    max_data_per_client: int
    max_eval_size: int
    test_distribution: str
    tasks_per_client: int
    dirichlet_alpha: float
    dirichlet_min_records: int
    unseen_tasks: TaskSelection

    @classmethod
    def from_config(cls, cfg: Any) -> PartitionSettings:
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


@process_state.cached(maxsize=4)
def _partitions(s: PartitionSettings, source: SourceOptions) -> tuple[ClientData, ...]:
    pool = load_pool(s.dataset_name, s.dataset_sample, s.seed, source)  # source: the column/hub settings
    tasks = pool_tasks(pool)  # the data says which tasks exist
    train, test = train_test_split(pool, s.train_split, s.seed)
    return tuple(
        partition(train, test, canonical_split(s.split_strategy), s.num_clients,
                  max_data_per_client=s.max_data_per_client, max_eval_size=s.max_eval_size,
                  test_distribution=s.test_distribution, seed=s.seed, tasks=tasks,
                  tasks_per_client=s.tasks_per_client, dirichlet_alpha=s.dirichlet_alpha,
                  dirichlet_min_records=s.dirichlet_min_records, unseen_tasks=s.unseen_tasks)
    )


def all_client_data(cfg) -> tuple[ClientData, ...]:
    """Every client's partition (used by clients for their own slice, and by tests)."""
    return _partitions(PartitionSettings.from_config(cfg), SourceOptions.from_config(cfg))


def client_data(cfg, client_id: int) -> ClientData:
    return all_client_data(cfg)[client_id]


def client_task_counts(cfg) -> dict[str, dict]:
    """Each client's records per task, for the run folder's clients.json: {"<client id>": {"train": {task: n},
    "test": {task: n}, "tasks": [its training tasks]}} (every task of the data in each count, in the data's
    order; keys are strings, as JSON keeps them)."""
    return {str(c.client_id): task_counts(c) for c in all_client_data(cfg)}
