"""The seed launcher: it forwards only the variables a user set, so a preset is honoured and its
comments' defaults are the code's; a variable it does not know is an error; an attempt that is refused
leaves a completed run's files as they were; the summary covers the seeds asked for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib

import numpy as np
import pytest

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
    # Assert: no warning line nobody asked for (Python warnings of the libraries, Flower's deprecation of
    # the in-process simulation and its worker shutdown lines); the run's own WARNING log lines may appear
    noise = [line for line in (proc.stdout + proc.stderr).splitlines()
             if re.search(r"\w+Warning\b|warnings\.warn|DEPRECATED|Manually terminating", line)]
    assert not noise, noise
    # the written config has the preset's values where no variable was set, the variables' elsewhere
    config = json.loads((tmp_path / "fedrouter_single_seed0" / "config.json").read_text())
    preset = tomllib.loads((REPO / "configs" / "paper.toml").read_text())
    for key in ("lr", "seq_length", "batch_size_eval"):
        assert config[key] == preset[key], key
    assert (config["router"], config["test_distribution"]) == ("global", "all")  # evaluation_mode = "global"
    assert (config["num_rounds"], config["model_name_or_path"], config["max_eval_size"]) == (1, "builtin:tiny", 4)
    assert config["client_resources_gpus"] == 0.0
    assert config["router_model"] == preset["fedrouter"]["router_model"] == "centroid"  # its [fedrouter] table
    # the preset lists only what differs from the defaults (its method tables too)
    tables = {k: v for k, v in preset.items() if isinstance(v, dict)}
    assert all(preset[k] != flat_defaults()[k] for k in preset if k not in tables)
    assert all(v != flat_defaults()[k] for table in tables.values() for k, v in table.items())


def test_every_preset_reads_strictly_and_lists_only_differences():
    from fedrouter.runtime.simulate import build_config, load_preset

    presets = sorted((REPO / "configs").glob("*.toml"))
    assert {p.name for p in presets} >= {"paper.toml", "real-smollm2.toml"}
    for path in presets:
        cfg = build_config(str(path), [])  # unknown keys or bad values raise here
        values = load_preset(str(path))
        assert all(values[k] != flat_defaults()[k] for k in values if k in flat_defaults()), path.name
        assert all(v != flat_defaults()[k] for t in values.values() if isinstance(t, dict) for k, v in t.items())
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


def _launch(env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(LAUNCHER)], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def _completed_run(output_dir, alias: str, seed: int, rouge1: float) -> dict[str, bytes]:
    """A completed run folder as the launcher would leave it for `sim_alias=alias` and this seed (its
    config is what the launcher resolves, so a rerun finds it complete), with its seed log; returns
    every file's bytes."""
    from fedrouter.results.run_folder import RunFolder
    from fedrouter.runtime.simulate import build_config

    cfg = build_config(None, [f"sim_alias={alias}", f"seed={seed}", f"output_dir={output_dir}"])
    folder = RunFolder(cfg.run_dir)
    final = {"rouge1": rouge1, "rouge2": rouge1 / 2, "rougeL": rouge1}
    folder.write_config(cfg.to_dict())
    folder.write_metrics([{"round": cfg.num_rounds, "eval": final}])
    folder.save_checkpoint(cfg.num_rounds, {"w": np.zeros(2)}, {"round": cfg.num_rounds})
    folder.write_results({"final_round": cfg.num_rounds, "final": final, "seed": seed})
    (folder.path / "log.txt").write_text("the run's own log\n" * 50)
    (output_dir / f"{alias}_seed{seed}_log.txt").write_text("the finished run's console\n" * 500)
    return _files(output_dir, alias, seed)


def _files(output_dir, alias: str, seed: int) -> dict[str, bytes]:
    paths = [output_dir / f"{alias}_seed{seed}_log.txt", *(output_dir / f"{alias}_seed{seed}").rglob("*")]
    return {str(p.relative_to(output_dir)): p.read_bytes() for p in paths if p.is_file()}


def test_refused_attempts_leave_a_completed_run_as_it_was(tmp_path):
    # Prepare: seeds 0 and 1 of "done" completed (made by hand: no run needed to check the launcher)
    before = _completed_run(tmp_path, "done", 0, 0.40)
    _completed_run(tmp_path, "done", 1, 0.30)
    base = {"seeds": "0", "output_dir": str(tmp_path), "sim_alias": "done"}
    attempts = {
        # other settings than the folder's: refused before anything loads, one line, no traceback
        "num_rounds": ({"num_rounds": "3"}, "num_rounds: 20 -> 3"),
        # a typo of a launcher variable: refused before any run starts
        "typo": ({"num_round": "3"}, "num_round: not a variable of this launcher (did you mean num_rounds?)"),
    }
    for name, (env, message) in attempts.items():
        # Execute
        proc = _launch({**base, **env})
        out = proc.stdout + proc.stderr
        # Assert: refused with the message alone; the completed run's folder and its log byte-identical
        assert proc.returncode != 0, (name, out[-3000:])
        assert message in out and "Traceback" not in out, (name, out[-3000:])
        assert _files(tmp_path, "done", 0) == before, name
    assert "===" not in out  # the typo stopped the launcher before any run
    # the same settings again: the run is complete, nothing is redone or rewritten, and the summary
    # covers the one seed asked for (seed 1 is complete too, but was not asked for)
    proc = _launch(base)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _files(tmp_path, "done", 0) == before
    assert "over 1 seed(s)" in proc.stdout and "| 1 |" not in proc.stdout


@pytest.mark.parametrize(("name", "message"), [
    ("seed", "seed: the launcher sets it for each run (did you mean seeds?)"),
    ("max_eval_size", 'max_eval_size: a setting, but not a variable of this launcher; pass it as extra="max_eval_size=..."'),
    ("fed_algo", "fed_algo: not a variable of this launcher (did you mean fed_alg?)"),
    ("max_eval_sise", "did you mean the setting max_eval_size?"),
])
def test_variables_the_launcher_does_not_know_are_errors(name, message, capsys):
    from fedrouter.runtime.launcher import main

    # the launcher passes the lowercase names set when it starts; http_proxy resembles nothing known
    known = ["--variables", "seeds sim_alias num_rounds fed_alg"]
    assert main([*known, "--set", f"seeds num_rounds http_proxy {name}", "--", "num_rounds=2"]) == 2
    out = capsys.readouterr()
    assert message in out.err and len(out.err.strip().splitlines()) == 1 and not out.out, out
    # without it, the settings are read and the run's name printed
    assert main([*known, "--set", "seeds num_rounds http_proxy", "--", "num_rounds=2", "sim_alias=x"]) == 0
    assert capsys.readouterr().out == "x\n"


def test_a_presets_method_table_applies_to_that_method_only(tmp_path):
    """configs/paper.toml keeps the paper's router for FedRouter in its [fedrouter] table; FedIT reads the same
    preset without error; a command-line setting beats the table; `flwr run` flattens the table to dotted keys."""
    from fedrouter.config import RunConfig
    from fedrouter.runtime.simulate import build_config

    paper = str(REPO / "configs" / "paper.toml")
    assert build_config(paper, ["fed_alg=fedrouter"]).alg.router_model == "centroid"
    assert build_config(paper, ["fed_alg=fedrouter", "router_model=gaussian"]).alg.router_model == "gaussian"
    assert build_config(paper, ["fed_alg=fedit"]).fed_alg == "fedit"
    flat = {"fed_alg": "fedrouter", "router_model": "lda", "fedrouter.router_model": "centroid"}
    assert RunConfig.from_mapping(flat).alg.router_model == "centroid"
    assert RunConfig.from_mapping({**flat, "fed_alg": "fedit"}).fed_alg == "fedit"  # another method's table: ignored
    bad = tmp_path / "bad.toml"
    bad.write_text("[nosuchmethod]\nrouter_model = 'centroid'\n")
    with pytest.raises(Exception, match="nosuchmethod"):
        build_config(str(bad), [])
