"""From settings to one client's data: pool -> train/test split -> the client's partition."""

from __future__ import annotations

from functools import lru_cache

from fedrouter.data.sources import load_pool
from fedrouter.data.splits import ClientData, canonical_split, partition, pool_tasks, train_test_split


@lru_cache(maxsize=4)
def _partitions(dataset_name: str, dataset_sample: int, seed: int, train_split: float, strategy: str,
                num_clients: int, max_data_per_client: int, max_eval_size: int, test_distribution: str
                ) -> tuple[ClientData, ...]:
    pool = load_pool(dataset_name, dataset_sample, seed)
    tasks = pool_tasks(pool)  # the data says which tasks exist
    train, test = train_test_split(pool, train_split, seed)
    return tuple(
        partition(train, test, canonical_split(strategy), num_clients, max_data_per_client=max_data_per_client,
                  max_eval_size=max_eval_size, test_distribution=test_distribution, seed=seed, tasks=tasks)
    )


def all_client_data(cfg) -> tuple[ClientData, ...]:
    """Every client's partition (used by clients for their own slice, and by tests)."""
    return _partitions(cfg.dataset_name, cfg.dataset_sample, cfg.seed, cfg.train_split, cfg.split_strategy,
                       cfg.num_clients, cfg.max_data_per_client, cfg.max_eval_size, cfg.test_distribution)


def client_data(cfg, client_id: int) -> ClientData:
    return all_client_data(cfg)[client_id]
