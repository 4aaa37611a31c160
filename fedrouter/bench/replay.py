"""Replaying a finished run's messages in this process: its server state, and one client's runtime."""

from __future__ import annotations

from pathlib import Path

from fedrouter.algorithms.base import ClientRuntime, ServerAlgorithm, get_algorithm
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.config import RunConfig
from fedrouter.data.federated import client_data
from fedrouter.data.prompt import encode_example
from fedrouter.models.backbone import get_backbone
from fedrouter.results.run_folder import RunFolder


def restored_server(cfg: RunConfig, run_dir: Path) -> tuple[ServerAlgorithm, int]:
    """The run's server half (its algorithm's, from the registry) as it stood after the last round, and that round."""
    folder = RunFolder(run_dir)
    rnd = folder.latest_round()
    arrays, meta = folder.load_checkpoint(rnd)
    server = get_algorithm(cfg.fed_alg).server(cfg)
    server.load_state_dict(arrays, meta["algorithm"])
    return server, rnd


def client_runtime(cfg: RunConfig, client_id: int, rnd: int, store_root: Path) -> ClientRuntime:
    """What the ClientApp builds for a message: the client's data, the shared backbone, a store."""
    backbone = get_backbone(cfg)
    data = client_data(cfg, client_id)
    examples = [encode_example(backbone.tokenizer, r["instruction"], r["response"], cfg.seq_length) for r in data.train]
    return ClientRuntime(cfg, client_id, rnd, data, backbone, ClientStore(store_root, client_id), examples)
