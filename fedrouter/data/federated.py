"""From settings to one client's data: pool -> train/test split -> the client's partition."""

from __future__ import annotations

from fedrouter.data.sources import SourceOptions, load_pool
from fedrouter.data.splits import ClientData, canonical_split, partition, pool_tasks, task_counts, train_test_split
from fedrouter.utils import process_state

# The RunConfig settings a partition depends on, in the order _partitions takes them.
DATA_SETTINGS = ("dataset_name", "dataset_sample", "seed", "train_split", "split_strategy", "num_clients",
                 "max_data_per_client", "max_eval_size", "test_distribution", "tasks_per_client",
                 "dirichlet_alpha", "dirichlet_min_records", "unseen_tasks")


@process_state.cached(maxsize=4)
def _partitions(dataset_name: str, dataset_sample: int, seed: int, train_split: float, strategy: str,
                num_clients: int, max_data_per_client: int, max_eval_size: int, test_distribution: str,
                tasks_per_client: int, dirichlet_alpha: float, dirichlet_min_records: int, unseen_tasks: str,
                source: SourceOptions | None = None) -> tuple[ClientData, ...]:
    pool = load_pool(dataset_name, dataset_sample, seed, source)  # source: the column/hub settings
    tasks = pool_tasks(pool)  # the data says which tasks exist
    train, test = train_test_split(pool, train_split, seed)
    return tuple(
        partition(train, test, canonical_split(strategy), num_clients, max_data_per_client=max_data_per_client,
                  max_eval_size=max_eval_size, test_distribution=test_distribution, seed=seed, tasks=tasks,
                  tasks_per_client=tasks_per_client, dirichlet_alpha=dirichlet_alpha,
                  dirichlet_min_records=dirichlet_min_records, unseen_tasks=unseen_tasks)
    )


def all_client_data(cfg) -> tuple[ClientData, ...]:
    """Every client's partition (used by clients for their own slice, and by tests)."""
    return _partitions(*(getattr(cfg, name) for name in DATA_SETTINGS), source=SourceOptions.from_config(cfg))


def client_data(cfg, client_id: int) -> ClientData:
    return all_client_data(cfg)[client_id]


def client_task_counts(cfg) -> dict[str, dict]:
    """Each client's records per task, for the run folder's clients.json: {"<client id>": {"train": {task: n},
    "test": {task: n}, "tasks": [its training tasks]}} (every task of the data in each count, in the data's
    order; keys are strings, as JSON keeps them)."""
    return {str(c.client_id): task_counts(c) for c in all_client_data(cfg)}
