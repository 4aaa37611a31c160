"""From settings to partitions: the settings a partition depends on are RunConfig's, read from the run."""

from __future__ import annotations

import dataclasses

from fedrouter.config import RunConfig
from fedrouter.data.federated import PartitionSettings, all_client_data


def test_partition_settings_are_run_settings_of_the_same_type():
    run = {f.name: f for sec in RunConfig().section_list() for f in dataclasses.fields(sec)}
    for f in dataclasses.fields(PartitionSettings):
        assert f.name in run and f.type == run[f.name].type, f.name
        assert f.default is dataclasses.MISSING, f"{f.name} restates a default"


def test_partitions_are_read_from_the_run_and_cached():
    cfg = RunConfig().replace(dataset_sample=20, num_clients=4, sample_clients=4, max_eval_size=0)
    assert PartitionSettings.from_config(cfg).num_clients == 4
    assert all_client_data(cfg) is all_client_data(RunConfig().replace(dataset_sample=20, num_clients=4,
                                                                        sample_clients=4, max_eval_size=0))
    assert all_client_data(cfg) is not all_client_data(cfg.replace(seed=1))
