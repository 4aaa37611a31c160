"""fedrouter.runtime.client_app, the parts a unit test reaches without a federation: the settings a message
carries, which client a node is, and where a client keeps its private state (the app's message handling
runs in every simulation and deployment test)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flwr.app import ConfigRecord, Context, RecordDict

from conftest import tiny_settings
from fedrouter.runtime.client_app import client_id_of, config_from_message, store_root


def _context(**node_config) -> Context:
    return Context(run_id=1, node_id=1, node_config=node_config, state=RecordDict(), run_config={})


def test_the_settings_a_message_carries_are_read_once_per_process(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedprox", mu="0.2")
    content = RecordDict({"config": ConfigRecord(cfg.to_dict()), "ctx": ConfigRecord({"round": 1, "kind": "train"})})
    msg = SimpleNamespace(content=content)  # what the function reads of a Message (one needs a running Flower task)
    assert config_from_message(msg) == cfg and config_from_message(msg).alg.mu == 0.2
    assert config_from_message(msg) is config_from_message(msg)  # parsed once, then cached


def test_a_node_is_the_client_of_its_partition_id():
    assert client_id_of(_context(**{"partition-id": 3})) == 3
    with pytest.raises(RuntimeError, match="no 'partition-id' in its node config"):
        client_id_of(_context())


def test_supernode_state_folder_is_per_run(tmp_path):
    def root(cfg):
        ctx = Context(run_id=1, node_id=1, node_config={"client-state-dir": str(tmp_path / "node")},
                      state=RecordDict(), run_config={})
        return store_root(cfg, ctx)

    base = tiny_settings(tmp_path / "out", sim_alias="a")
    assert root(base).parent == tmp_path / "node"
    assert root(base).name.startswith("a_seed0-")
    assert root(base) == root(base.replace(resume=False, max_failure_rate=0.9))  # a resume finds its state
    assert root(base) != root(base.replace(seed=1))  # another run
    assert root(base) != root(base.replace(n_clusters="2"))  # same name, other settings: no stale state
    sim = Context(run_id=1, node_id=1, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
    assert store_root(base, sim) == base.run_dir / "clients"
