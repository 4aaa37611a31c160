"""Any set of tasks, end to end: local datasets with 3 and 6 tasks of their own names through every
algorithm, FedRouter recovering 6 tasks, and a task no client trained on scored and routed apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tiny_settings
from fedrouter.algorithms.base import algorithms
from fedrouter.data.builtin import make_builtin_pool
from fedrouter.runtime.simulate import simulate

RENAMED = {"qqp": "paraphrase", "gigaword": "headline", "webnlg": "describe"}


def three_task_file(root: Path) -> Path:
    """Three of the built-in tasks under names of their own (the tiny model knows their words)."""
    rows = [{**r, "task": RENAMED[r["task"]]} for r in make_builtin_pool(40, seed=5) if r["task"] in RENAMED]
    return _write(root / "three.jsonl", rows)


def six_task_file(root: Path, per_task: int = 40) -> Path:
    """The four built-in tasks and two inverse ones (a biography -> its triples, a summary -> its
    dialogue): six tasks whose inputs have six different forms."""
    rows = []
    for r in make_builtin_pool(per_task, seed=5):
        rows.append(r)
        if r["task"] == "webnlg":
            rows.append({"instruction": r["response"], "response": r["instruction"], "task": "bio2triples"})
        if r["task"] == "samsum":
            rows.append({"instruction": r["response"], "response": r["instruction"], "task": "summary2chat"})
    return _write(root / "six.jsonl", rows)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _own_settings(name: str, n_tasks: int, num_clients: int) -> dict:
    """What a 1-round run needs of each algorithm's own settings (everything else at its default)."""
    return {"fedrouter": {"global_n_clusters": str(n_tasks)},
            "fedcluster": {"sim_round": 1, "n_groups": str(min(n_tasks, num_clients))}}.get(name, {})


def _run(tmp_path: Path, data: Path, name: str, n_tasks: int, num_clients: int, **settings) -> dict:
    cfg = tiny_settings(tmp_path / name, fed_alg=name, dataset_name=str(data), dataset_sample=0,
                        num_clients=num_clients, sample_clients=num_clients, num_rounds=1, eval_round="1",
                        max_steps=2, max_new_tokens=4, **{**_own_settings(name, n_tasks, num_clients), **settings})
    results = simulate(cfg)
    return {"cfg": cfg, "final": results["final"], "data": json.loads((cfg.run_dir / "data.json").read_text())}


# FedRouter in the default suite; the others with `pytest -m slow` (a minute each on 2 busy cores)
@pytest.mark.parametrize("name", [pytest.param(a.name, marks=() if a.proposed else pytest.mark.slow)
                                  for a in algorithms()])
def test_three_tasks_of_their_own_names_run_through_every_algorithm(tmp_path, name):
    out = _run(tmp_path, three_task_file(tmp_path), name, 3, 3)
    assert set(out["data"]["tasks"]) == set(RENAMED.values())
    assert {k.split("/")[1] for k in out["final"] if k.startswith("rouge1/")} == set(RENAMED.values())
    assert [c["tasks"] for c in out["data"]["clients"].values()] == [[t] for t in out["data"]["tasks"]]
    assert out["final"]["num_samples"] > 0


@pytest.mark.slow  # ~4 min: seven simulations with 6 clients each
@pytest.mark.parametrize("name", [a.name for a in algorithms()])
def test_six_tasks_run_through_every_algorithm(tmp_path, name):
    out = _run(tmp_path, six_task_file(tmp_path), name, 6, 6)
    assert len(out["data"]["tasks"]) == 6
    assert len({k for k in out["final"] if k.startswith("rouge1/")}) == 6


def test_fedrouter_recovers_six_tasks(tmp_path):
    # 12 single-task clients, 2 per task; the server's K=6 global clusters against the true tasks
    out = _run(tmp_path, six_task_file(tmp_path), "fedrouter", 6, 12)
    diag = json.loads((out["cfg"].run_dir / "diagnostics.json").read_text())
    assert diag["global_k"] == 6 and len(diag["tasks"]) == 6
    assert diag["global_purity"] >= 0.95, diag["global_task_table"]


@pytest.mark.parametrize("name", ["fedrouter", "fedit"])
def test_a_task_nobody_trained_on_is_scored_and_routed_apart(tmp_path, name):
    # Prepare: the built-in benchmark, samsum left out: 6 single-task clients over the other three
    # (2 each), every client tested on all four tasks
    cfg = tiny_settings(tmp_path, fed_alg=name, num_clients=6, sample_clients=6, unseen_tasks="samsum",
                        test_distribution="all", num_rounds=1, eval_round="1", max_steps=2, max_new_tokens=4,
                        **({"router": "global", "global_n_clusters": "3"} if name == "fedrouter" else {}))
    # Execute
    final = simulate(cfg)["final"]
    data = json.loads((cfg.run_dir / "data.json").read_text())
    # Assert: nobody trained on samsum, everybody was tested on it, and it is scored apart
    assert all(c["train"]["samsum"] == 0 and c["test"]["samsum"] > 0 for c in data["clients"].values())
    assert {"rouge1/seen", "rouge1/unseen", "rouge1/samsum"} <= set(final)
    assert final["rouge1/unseen"] == pytest.approx(final["rouge1/samsum"])
    if name == "fedrouter":
        diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
        where = diag["unseen_routing"]["1"]["samsum"]
        assert sum(where.values()) == sum(c["test"]["samsum"] for c in data["clients"].values())
        assert diag["global_purity"] == 1.0  # the seen tasks still get one cluster each


def test_auto_finds_the_six_tasks_globally(tmp_path):
    # 12 single-task clients over 6 tasks (32 training records each), one local cluster each, K chosen by
    # auto (k_rule=gap). Measured (docs/auto_k.md): K = 6 for seeds 0-4 at 32 records per client; at 16
    # per client the centroids are noisier and seed 0 keeps one task's two clients apart (K = 7).
    out = _run(tmp_path, six_task_file(tmp_path, per_task=80), "fedrouter", 6, 12, global_n_clusters="auto")
    diag = json.loads((out["cfg"].run_dir / "diagnostics.json").read_text())
    assert diag["global_k"] == 6 and diag["global_purity"] >= 0.95, diag["global_task_table"]
