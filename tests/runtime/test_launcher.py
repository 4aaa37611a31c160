"""The seed launcher: it forwards only the variables a user set, so a preset is honoured and its
comments' defaults are the code's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib

from conftest import REPO
from fedrouter.config import flat_defaults

LAUNCHER = REPO / "training_scripts" / "run_flower_simulation_router.sh"


def test_the_launchers_bracketed_defaults_are_the_codes():
    defaults = flat_defaults()
    shown = dict(re.findall(r"^(\w+)=\$\{\w+:-\}\s+#.*\[([^\]]+)\]\s*$", LAUNCHER.read_text(), re.M))
    assert len(shown) >= 25
    for key, text in shown.items():
        if key in ("fed_alg", "sim_alias"):  # empty in the code: resolved when read
            continue
        assert str(defaults[key]).lower() == text.lower(), key


def test_preset_is_honoured_and_launcher_variables_win(tmp_path):
    # Prepare: the paper's preset, made tiny by a few launcher variables (CPU, built-in model and data)
    env = {**os.environ, "preset": "configs/paper.toml", "seeds": "0", "output_dir": str(tmp_path),
           "model_name_or_path": "builtin:tiny", "dataset_name": "builtin", "load_in_4bit": "false",
           "dataset_sample": "60", "num_clients": "4", "sample_clients": "4", "num_rounds": "1", "eval_round": "1",
           "max_steps": "1", "batch_size": "4", "max_new_tokens": "2", "client_resources_cpus": "1",
           "client_resources_gpus": "0", "extra": "max_eval_size=4"}
    # Execute
    proc = subprocess.run(["sh", str(LAUNCHER)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Assert: the written config has the preset's values where no variable was set, the variables' elsewhere
    config = json.loads((tmp_path / "fedrouter_single_seed0" / "config.json").read_text())
    preset = tomllib.loads((REPO / "configs" / "paper.toml").read_text())
    for key in ("lr", "seq_length", "batch_size_eval"):
        assert config[key] == preset[key], key
    assert (config["router"], config["test_distribution"]) == ("global", "all")  # evaluation_mode = "global"
    assert (config["num_rounds"], config["model_name_or_path"], config["max_eval_size"]) == (1, "builtin:tiny", 4)
    assert config["client_resources_gpus"] == 0.0
    # the preset lists only what differs from the defaults
    assert all(preset[k] != flat_defaults()[k] for k in preset)


def test_every_preset_reads_strictly_and_lists_only_differences():
    from fedrouter.runtime.simulate import build_config, load_preset

    presets = sorted((REPO / "configs").glob("*.toml"))
    assert {p.name for p in presets} >= {"paper.toml", "real-smollm2.toml"}
    for path in presets:
        cfg = build_config(str(path), [])  # unknown keys or bad values raise here
        values = load_preset(str(path))
        assert all(values[k] != flat_defaults()[k] for k in values if k in flat_defaults()), path.name
        assert cfg.dataset_name == values.get("dataset_name", cfg.dataset_name)


def test_a_run_folders_config_json_reruns_that_run(tmp_path):
    from fedrouter.results.run_folder import RunFolder
    from fedrouter.runtime.simulate import build_config

    cfg = build_config(str(REPO / "configs" / "real-smollm2.toml"),
                       ["fed_alg=fedrouter", "n_clusters=2", "seed=3", f"output_dir={tmp_path / 'a'}"])
    RunFolder(cfg.run_dir).write_config(cfg.to_dict())
    again = build_config(str(cfg.run_dir / "config.json"), [f"output_dir={tmp_path / 'b'}"])
    assert again.replace(output_dir=cfg.output_dir) == cfg
    assert again.run_dir == tmp_path / "b" / cfg.run_dir.name
