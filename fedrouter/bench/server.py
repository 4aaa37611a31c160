"""The FedRouter server's setup (global clustering) and one round's aggregation for many synthetic clients."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fedrouter.algorithms.base import from_record, get_algorithm, reply, to_record
from fedrouter.config import RunConfig
from fedrouter.steps import cluster
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
    """Setup: every client sends k_local centroids of dimension `dim` (noisy copies of 4 task
    centres); the server's `aggregate_setup` clusters them (K=4; diagnostics off, as in a real
    federation, so no silhouette curve) and maps every local cluster. Round 1: every client sends one adapter of `shapes`;
    `aggregate_train` deserializes them and averages per global cluster. Timed: those two calls,
    plus one bare k-means of the same points for reference."""
    cfg = RunConfig.from_mapping({"num_clients": num_clients, "sample_clients": num_clients, "n_clusters": k_local,
                                  "global_n_clusters": NUM_TASKS, "diagnostics": False, "seed": seed})
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(NUM_TASKS, dim)).astype(np.float32)
    local = [centres[rng.integers(NUM_TASKS, size=k_local)] + rng.normal(scale=0.5, size=(k_local, dim)).astype(np.float32)
             for _ in range(num_clients)]
    setup_replies = {}
    for cid, cents in enumerate(local):
        setup_replies[cid] = reply({"k_local": k_local, "num_samples": 40 * k_local}, meta={"k_local": k_local})
        setup_replies[cid]["centroids"] = to_record({"centroids": cents, "counts": np.full(k_local, 40)})

    cluster.forget_fits()
    start = time.perf_counter()
    cluster.kmeans(np.concatenate(local), NUM_TASKS, seed + 1)
    kmeans_s = time.perf_counter() - start

    server = get_algorithm(cfg.fed_alg).server(cfg)  # the registry's proposed method
    with recording() as phases:
        start = time.perf_counter()
        server.aggregate_setup(setup_replies)
        setup_s = time.perf_counter() - start

    contents = server.configure_train(1, list(range(num_clients)))
    base = {k: rng.normal(scale=0.01, size=s).astype(np.float32) for k, s in shapes.items()}
    train_replies = {}
    for cid, content in contents.items():
        c = content["meta"]["clusters"][0]
        state = {k: v + np.float32(cid * 1e-4) for k, v in base.items()}
        train_replies[cid] = reply({"loss": 1.0, f"num_samples/{c}": 40.0}, {f"adapter_{c}": state})
    start = time.perf_counter()
    server.aggregate_train(1, train_replies)
    aggregate_s = time.perf_counter() - start
    # What of that is Flower's deserialization of the adapters (np.load of every array), timed apart:
    # the issue counts "Flower/serialization overhead" as a phase of its own.
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
