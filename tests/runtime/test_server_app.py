"""fedrouter.runtime.server_app, the parts a unit test reaches without a federation: the settings of a run
(flwr's run config, or the launcher's resolved JSON), the clients of a round, the failure limit, and
what the round rows sum up to (the round loop itself runs in every simulation test)."""

from __future__ import annotations

import json

import pytest
from flwr.app import Context, RecordDict

from fedrouter.algorithms.base import reply
from fedrouter.config import RunConfig
from fedrouter.runtime.server_app import (
    CONFIG_ENV,
    RunFailed,
    _check_failures,
    client_times,
    config_from_context,
    run_traffic,
    sample_clients,
)


def _context(run_config: dict) -> Context:
    return Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=run_config)


def test_the_launchers_json_overrides_flwrs_run_config(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    ctx = _context({"num_rounds": 4, "seed": 2})
    assert config_from_context(ctx) == RunConfig.from_mapping({"num_rounds": 4, "seed": 2})
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps({"num_rounds": 3}))
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert (config_from_context(ctx).num_rounds, config_from_context(ctx).seed) == (3, 2)


def test_the_clients_of_a_round_depend_on_the_seed_and_round_only():
    cfg = RunConfig(num_clients=10, sample_clients=4)
    rounds = [sample_clients(cfg, r) for r in range(1, 6)]
    assert all(len(c) == 4 == len(set(c)) and c == sorted(c) and set(c) <= set(range(10)) for c in rounds)
    assert rounds == [sample_clients(cfg, r) for r in range(1, 6)] and len({tuple(c) for c in rounds}) > 1
    assert sample_clients(RunConfig(num_clients=4, sample_clients=4), 1) == [0, 1, 2, 3]


def test_too_many_failed_clients_stop_the_run():
    cfg = RunConfig(max_failure_rate=0.5)
    _check_failures(cfg, "training", 2, {1: "boom", 3: "boom"}, asked=4)  # half: allowed
    with pytest.raises(RunFailed, match=r"round 2 training: 3 of 4 clients failed \(max_failure_rate=0.5\)"):
        _check_failures(cfg, "training", 2, {0: "a", 1: "b", 3: "c"}, asked=4)


def test_traffic_and_client_times_from_the_rows_and_replies():
    rows = [{"comm": {"down_bytes": 10, "up_bytes": 4}}, {"comm": {"down_bytes": 5, "up_bytes": 1}}]
    assert run_traffic(rows) == {"down_bytes": 15, "up_bytes": 5, "total_bytes": 20}
    assert run_traffic([*rows, {}]) is None  # a row from before the accounting
    replies = {2: reply({"loss": 1.0, "time_s": 3.0, "time/train": 2.0, "pid": 7.0, "load_count": 1.0})}
    assert client_times(replies) == {"2": {"time_s": 3.0, "time/train": 2.0, "pid": 7.0, "load_count": 1.0}}
