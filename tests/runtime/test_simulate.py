"""End-to-end runs through Flower's Simulation Engine on the embedded default (real apps, real Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_settings
from fedrouter.results.run_folder import RunFolder
from fedrouter.runtime.simulate import main, simulate


def test_fedit_rouge_rises_over_zero_shot(tmp_path):
    """Round 0 evaluates the base model (LoRA B = 0) through the same pipeline: training must beat it.
    Clients hold every task (`all`): with single-task clients, few rounds of long local training
    average four task-specific drifts into one adapter that fits none (the interference FedRouter is
    about), which would make this a test of the budget, not of the pipeline."""
    cfg = tiny_settings(tmp_path, fed_alg="fedit", split_strategy="all", num_rounds=3, eval_round="0,2",
                        max_steps=20, batch_size=16, lr=3e-3, max_new_tokens=24)
    results = simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {r["round"]: r["eval"]["rouge1"] for r in rows if "eval" in r}
    assert [r["round"] for r in rows] == [0, 1, 2, 3] and list(evals) == [0, 2, 3]
    assert evals[3] > evals[0] + 0.1, evals
    assert results["final"]["rouge1"] == evals[3]
    # run folder: resolved config, log, PEFT adapters at evaluation rounds (none for the untrained round 0)
    assert json.loads((cfg.run_dir / "config.json").read_text())["fed_alg"] == "fedit"
    assert "round 3/3" in (cfg.run_dir / "log.txt").read_text()
    assert sorted(p.name for p in (cfg.run_dir / "adapters").iterdir()) == ["round_2", "round_3"]
    assert (cfg.run_dir / "adapters" / "round_3" / "global" / "adapter_model.safetensors").exists()


def test_fedrouter_recovers_tasks_and_routes_them(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=8, sample_clients=8, num_rounds=1, eval_round="1",
                        max_steps=2, global_n_clusters="4", evaluation_mode="global", max_new_tokens=4)
    results = simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["global_purity"] >= 0.95
    assert results["final"]["routing_accuracy"] >= 0.95
    assert len(set(tuple(v) for v in diag["mapping"].values())) == 4  # four tasks -> four adapters
    assert (cfg.run_dir / "adapters" / "round_1" / "cluster_0" / "adapter_model.safetensors").exists()


def test_dual_split_local_clusters_separate_each_clients_two_tasks(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", split_strategy="dual", num_clients=4, n_clusters="2",
                        global_n_clusters="4", num_rounds=1, eval_round="1", max_steps=1, max_new_tokens=2)
    simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["mean_local_purity"] >= 0.9, diag["local_purity"]


def test_auto_picks_four_global_clusters(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", num_clients=8, sample_clients=8, global_n_clusters="auto",
                        k_range="2,7", num_rounds=1, eval_round="1", max_steps=1, max_new_tokens=2)
    simulate(cfg)
    diag = json.loads((cfg.run_dir / "diagnostics.json").read_text())
    assert diag["global_k"] == 4, diag["global_silhouette"]


@pytest.mark.parametrize("alias", ["clustered"])
def test_reference_alias_runs_fedrouter(tmp_path, alias):
    from fedrouter.algorithms.base import get_algorithm

    assert get_algorithm(alias).name == "fedrouter"


def test_failing_client_is_reported_and_left_out(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=3, eval_round="3", max_steps=2, max_new_tokens=4,
                        inject_fault="1:2,2:3:nan")
    simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["failures"] == {}
    assert "injected fault" in rows[1]["failures"]["1"]
    assert "non-finite loss" in rows[2]["failures"]["2"]
    assert "client 1 train failed" in (cfg.run_dir / "log.txt").read_text()


def test_too_many_failures_stop_the_run(tmp_path):
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=2, max_steps=1, inject_fault="0:1,1:1,2:1",
                        max_failure_rate=0.5)
    with pytest.raises(Exception, match="3 of 4 clients failed"):
        simulate(cfg)


def test_client_that_does_not_answer_in_time_is_left_out(tmp_path):
    # client 1's round-1 training answers only after 2 x reply_timeout: the server stops waiting at
    # reply_timeout and the round goes on with the other clients. (Flower's simulation engine itself
    # still waits for the late worker before it returns; a deployed SuperLink does not.)
    cfg = tiny_settings(tmp_path, fed_alg="fedit", num_rounds=2, eval_round="2", max_steps=1, max_new_tokens=4,
                        reply_timeout=25, inject_fault="1:1:hang")
    simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["failures"] == {"1": "no reply within reply_timeout=25 s"}
    assert 25 <= rows[0]["time_s"] < 50  # waited the timeout, not for the late reply
    assert sorted(rows[0]["timing"]["train"]) == ["0", "2", "3"]
    assert rows[1]["failures"] == {} and rows[1]["eval_failures"] == {} and "rouge1" in rows[1]["eval"]


def _completed_folder(tmp_path) -> tuple[list[str], dict[str, bytes]]:
    """A completed run's folder (made by hand); returns its settings as key=value and its files' bytes."""
    cfg = tiny_settings(tmp_path, num_rounds=2, eval_round="2")
    folder = RunFolder(cfg.run_dir)
    folder.write_config(cfg.to_dict())
    folder.save_checkpoint(2, {"w": np.zeros(2)}, {"round": 2})
    folder.write_results({"final_round": 2, "final": {"rouge1": 0.4, "rouge2": 0.2, "rougeL": 0.4}})
    return [f"{k}={v}" for k, v in cfg.to_dict().items()], _files(tmp_path)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def nothing_may_load(monkeypatch):
    """Fail the test if the model, the data or the federation is reached."""
    def fail(*args, **kwargs):
        pytest.fail("reached past the run folder's check")

    monkeypatch.setattr("fedrouter.models.loader.resolve_model_path", fail)
    monkeypatch.setattr("fedrouter.runtime.simulate.write_data_record", fail)
    monkeypatch.setattr("flwr.simulation.run_simulation", fail)


def test_other_settings_on_a_run_folder_are_refused_before_any_work(tmp_path, nothing_may_load, monkeypatch, capsys):
    # Prepare: a completed 2-round run; the settings are not even validated before the folder's check
    settings, before = _completed_folder(tmp_path)
    monkeypatch.setattr("fedrouter.validation.validate", lambda *a, **k: pytest.fail("validated first"))
    # Execute: the same run with num_rounds changed
    code = main([*settings, "num_rounds=3", "eval_round=3"])
    # Assert: exit code 2, the message alone (no traceback), the folder byte-identical
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("fedrouter: ") and len(err.strip().splitlines()) == 1, err
    assert "holds a run with different settings" in err and "num_rounds: 2 -> 3" in err and "resume=false" in err
    assert _files(tmp_path) == before


def test_refused_settings_leave_a_completed_folder_even_with_resume_false(tmp_path, nothing_may_load, capsys):
    # resume=false would start over in the folder, but a bad setting is refused before anything is touched
    settings, before = _completed_folder(tmp_path)
    assert main([*settings, "resume=false", f"dataset_name={tmp_path / 'no-such-data'}"]) == 2
    assert "dataset_name" in capsys.readouterr().err
    assert _files(tmp_path) == before


def test_a_completed_run_with_the_same_settings_is_returned_untouched(tmp_path, nothing_may_load, capsys):
    settings, before = _completed_folder(tmp_path)
    assert main(settings) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["rouge1"] == 0.4
    assert _files(tmp_path) == before
