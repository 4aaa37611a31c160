"""The proposed method's server at scale: its setup (global clustering) and one round's aggregation for many
synthetic clients."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fedrouter.algorithms.base import SyntheticClient, from_record, get_algorithm
from fedrouter.config import RunConfig
from fedrouter.steps import cluster
from fedrouter.utils import process_state
from fedrouter.utils.timing import recording

NUM_TASKS = 4


def llama_qv_lora_shapes(layers: int = 16, hidden: int = 2048, kv_out: int = 512, r: int = 8) -> dict[str, tuple]:
    """Key -> shape of a LoRA r=8 on q_proj and v_proj of Llama-3.2-1B (16 layers, hidden 2048,
    grouped-query v_proj output 512): 852k parameters, 3.4 MB in float32."""
    shapes = {}
    for i in range(layers):
        for mod, out in (("q_proj", hidden), ("v_proj", kv_out)):
            prefix = f"base_model.model.model.layers.{i}.self_attn.{mod}"
            shapes[f"{prefix}.lora_A.weight"] = (r, hidden)
            shapes[f"{prefix}.lora_B.weight"] = (out, r)
    return shapes


def server_scale(shapes: dict[str, tuple], num_clients: int = 1000, k_local: int = 4, dim: int = 2048,
                 seed: int = 0) -> dict[str, Any]:
    """The registry's proposed method's server half with `num_clients` synthetic clients, whose replies
    its client half builds (`synthetic_reply`) from made-up values. Setup: every client sends k_local
    centroids of dimension `dim` (noisy copies of 4 task centres); the server's `aggregate_setup` clusters
    them (K=4; diagnostics off, as in a real federation, so no silhouette curve) and maps every local
    cluster. Round 1: every client sends one adapter of `shapes`; `aggregate_train` deserializes them and
    averages per global cluster. Timed: those two calls, plus one bare k-means of the same points for
    reference, and apart, the deserialization of the adapters that `aggregate_train` includes."""
    cfg = RunConfig.from_mapping({"num_clients": num_clients, "sample_clients": num_clients, "n_clusters": k_local,
                                  "global_n_clusters": NUM_TASKS, "diagnostics": False, "seed": seed})
    alg = get_algorithm(cfg.fed_alg)
    if alg.synthetic_reply is None:
        raise ValueError(f"{alg.name} has no synthetic_reply hook: its server cannot be loaded with synthetic clients")
    ids = list(range(num_clients))
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(NUM_TASKS, dim)).astype(np.float32)
    local = [centres[rng.integers(NUM_TASKS, size=k_local)] + rng.normal(scale=0.5, size=(k_local, dim)).astype(np.float32)
             for _ in ids]
    counts = np.full(k_local, 40)
    base = {k: rng.normal(scale=0.01, size=s).astype(np.float32) for k, s in shapes.items()}

    process_state.clear(cluster)  # every k-means below is computed, none remembered from an earlier one
    start = time.perf_counter()
    cluster.kmeans(np.concatenate(local), NUM_TASKS, seed + 1)
    kmeans_s = time.perf_counter() - start

    server = alg.server(cfg)
    setup = server.configure_setup(ids) or {}
    setup_replies = {cid: alg.synthetic_reply("setup", setup[cid], SyntheticClient(local[cid], counts)) for cid in ids}
    with recording() as phases:
        start = time.perf_counter()
        server.aggregate_setup(setup_replies)
        setup_s = time.perf_counter() - start

    train_replies = {}
    for cid, content in server.configure_train(1, ids).items():
        adapter = {k: v + np.float32(cid * 1e-4) for k, v in base.items()}  # each client's its own
        train_replies[cid] = alg.synthetic_reply("train", content, SyntheticClient(local[cid], counts, adapter))
    start = time.perf_counter()
    server.aggregate_train(1, train_replies)
    aggregate_s = time.perf_counter() - start
    # The deserialization of the adapters (Flower's `Array.numpy` on every array), timed apart: it is
    # messaging work inside `aggregate_train`, reported beside the aggregation rather than in it.
    start = time.perf_counter()
    for content in train_replies.values():
        for name in content.array_records:
            from_record(content[name])
    deserialize_s = time.perf_counter() - start
    return {"clients": num_clients, "centroids_per_client": k_local, "dim": dim,
            "adapter_params": int(sum(np.prod(s) for s in shapes.values())),
            "global_clustering_s": setup_s, "of_which_kmeans_and_silhouette_s": phases.get("cluster", 0.0),
            "of_which_mapping_s": phases.get("route", 0.0), "bare_kmeans_s": kmeans_s,
            "aggregation_s": aggregate_s, "of_which_deserialization_s": deserialize_s,
            "clustering_and_aggregation_s": setup_s + aggregate_s - deserialize_s, "total_s": setup_s + aggregate_s}
