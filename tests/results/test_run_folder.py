"""The run folder: what a run records (config, metrics, adapters, checkpoints, results) and how a
restart clears it."""

from __future__ import annotations

import json

import numpy as np

from fedrouter.results.run_folder import RESUME_FREE_KEYS, RunFolder, config_differences


def test_config_metrics_results_and_diagnostics_round_trip(tmp_path):
    folder = RunFolder(tmp_path / "exp_seed0")
    assert (folder.read_config(), folder.read_metrics(), folder.read_results(), folder.read_diagnostics(),
            folder.read_zero_shot()) == (None, [], None, None, None)  # nothing recorded yet
    folder.write_config({"seed": 0, "num_rounds": 2})
    rows = [{"round": 0, "eval": {"rouge1": 0.1}}, {"round": 1, "loss": 2.5}, {"round": 2, "eval": {"rouge1": 0.3}}]
    folder.write_metrics(rows)
    folder.write_results({"final": {"rouge1": 0.3}})
    assert folder.read_config() == {"seed": 0, "num_rounds": 2}
    assert folder.read_metrics() == rows and folder.read_zero_shot() == {"rouge1": 0.1}
    assert folder.read_results() == {"final": {"rouge1": 0.3}}
    # metrics.jsonl: one sorted-key JSON object per round, rewritten whole (a resume drops rounds it redoes)
    lines = (folder.path / "metrics.jsonl").read_text().splitlines()
    assert lines[1] == '{"loss": 2.5, "round": 1}'
    folder.write_metrics(rows[:1])
    assert folder.read_metrics() == rows[:1]
    assert not list(folder.path.glob(".*.tmp"))  # every write atomic: no temporary file left


def test_checkpoints_keep_the_latest_two_and_the_pointer_names_a_complete_one(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert folder.latest_round() == 0
    for rnd in (1, 2, 3):
        folder.save_checkpoint(rnd, {"w": np.full(3, rnd, dtype=np.float32)}, {"round": rnd, "algorithm": {"k": rnd}})
    assert folder.latest_round() == 3
    assert sorted(p.name for p in folder.ckpt.iterdir()) == [
        "latest.json", "server_r2.json", "server_r2.npz", "server_r3.json", "server_r3.npz"]
    arrays, meta = folder.load_checkpoint(3)
    np.testing.assert_array_equal(arrays["w"], np.full(3, 3, dtype=np.float32))
    assert meta == {"round": 3, "algorithm": {"k": 3}}


def test_an_adapter_is_saved_in_peft_layout_replacing_an_earlier_save(tmp_path):
    from peft import LoraConfig
    from safetensors.numpy import load_file

    folder = RunFolder(tmp_path / "run")
    state = {"base_model.model.q.lora_A.weight": np.ones((2, 4), dtype=np.float32)}
    folder.save_adapter(2, "cluster_1", {k: v * 0 for k, v in state.items()}, LoraConfig(r=2), "builtin:tiny")
    path = folder.save_adapter(2, "cluster_1", state, LoraConfig(r=2, target_modules=["q"]), "builtin:tiny")
    assert path == folder.path / "adapters" / "round_2" / "cluster_1"
    assert sorted(p.name for p in path.parent.iterdir()) == ["cluster_1"]  # no temporary folder left
    np.testing.assert_array_equal(load_file(str(path / "adapter_model.safetensors"))[next(iter(state))], state[next(iter(state))])
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "builtin:tiny" and config["r"] == 2


def test_clear_removes_what_a_run_wrote_but_not_its_config(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_config({"seed": 0})
    folder.write_metrics([{"round": 1}])
    folder.write_results({"final": {}})
    folder.save_checkpoint(1, {"w": np.zeros(1)}, {"round": 1})
    (folder.path / "diagnostics.json").write_text("{}")
    (folder.path / "clients" / "client_0").mkdir(parents=True)
    (folder.path / "adapters" / "round_1").mkdir(parents=True)
    folder.write_provenance(1, {"commit": "abc"})
    folder.clear()
    assert sorted(p.name for p in folder.path.iterdir()) == ["config.json"]
    assert folder.latest_round() == 0 and folder.read_metrics() == []


def test_config_differences_name_the_changed_settings_except_the_resume_free_ones():
    old = {"seed": 0, "num_rounds": 2, "resume": True, "client_resources_cpus": 1}
    new = {"seed": 0, "num_rounds": 3, "resume": False, "client_resources_cpus": 4, "lr": 1e-3}
    assert config_differences(old, new) == ["lr: None -> 0.001", "num_rounds: 2 -> 3"]
    assert {"resume", "client_resources_cpus"} <= RESUME_FREE_KEYS


def test_a_setting_added_after_a_run_at_its_default_is_no_difference():
    """A run folder written before a setting existed still resumes / counts as complete when the new
    setting is at its default (it means what the code did then); at another value it is a difference."""
    from fedrouter.config import RunConfig
    from fedrouter.results.run_folder import config_differences

    new = RunConfig().to_dict()
    old = {k: v for k, v in new.items() if k not in ("metrics", "task_metrics")}
    assert config_differences(old, new) == []
    assert config_differences(old, RunConfig.from_mapping({"metrics": "rouge1,chrf"}).to_dict()) == [
        "metrics: None -> 'rouge1,chrf'"]
