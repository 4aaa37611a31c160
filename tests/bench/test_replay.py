"""Replaying a finished run in this process: its server as checkpointed, one client's runtime."""

from __future__ import annotations

import numpy as np

from conftest import tiny_settings
from fedrouter.algorithms.base import get_algorithm
from fedrouter.bench.replay import client_runtime, restored_server
from fedrouter.data.federated import client_data
from fedrouter.results.run_folder import RunFolder


def test_the_server_comes_back_as_its_last_checkpoint_left_it(tmp_path):
    # Prepare: a run folder whose round-2 checkpoint holds a proposed-method server with two clusters
    cfg = tiny_settings(tmp_path)
    server = get_algorithm(cfg.fed_alg).server(cfg)
    server.load_state_dict({"centroids": np.eye(2, dtype=np.float32),
                            "cluster_1/w": np.full(3, 1.0, dtype=np.float32)},
                           {"mapping": {"0": [1], "1": [0]}, "diag": {"routing_accuracy": {}}})
    arrays, meta = server.state_dict()
    folder = RunFolder(cfg.run_dir)
    folder.save_checkpoint(1, {k: v * 0 for k, v in arrays.items()}, {"round": 1, "algorithm": meta})
    folder.save_checkpoint(2, arrays, {"round": 2, "algorithm": meta})
    # Execute
    restored, rnd = restored_server(cfg, cfg.run_dir)
    # Assert: the latest round, and the same messages as the server that was saved
    assert rnd == 2 and type(restored) is type(server)
    np.testing.assert_array_equal(restored.adapters()["cluster_1"]["w"], np.full(3, 1.0, dtype=np.float32))
    assert restored.configure_train(3, [0, 1]).keys() == server.configure_train(3, [0, 1]).keys()


def test_a_client_runtime_holds_its_data_encoded_and_its_own_store(tmp_path):
    cfg = tiny_settings(tmp_path)
    rt = client_runtime(cfg, 2, 5, tmp_path / "stores")
    assert (rt.client_id, rt.rnd) == (2, 5) and rt.data.train == client_data(cfg, 2).train
    assert len(rt.examples) == len(rt.data.train) and rt.store.dir == tmp_path / "stores" / "client_2"
