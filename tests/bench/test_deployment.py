"""The deployment bench's run settings (bench defaults < preset < key=value overrides) and what it reads
from the two runs' metrics (the runs themselves are compared in the slow tests/runtime/test_clientapp_worker.py)."""

import pytest

from fedrouter.bench.__main__ import main as bench_main
from fedrouter.bench.deployment import bench_config, free_ports, run_config_arg, stage_walls, waiting
from fedrouter.config import ConfigError


def test_preset_then_overrides(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('num_rounds = 6\neval_round = "0,6"\nmax_steps = 4\nlr = 1e-3\n')
    cfg = bench_config(str(preset), ["num_rounds=2", "eval_round=2"])
    assert (cfg.num_rounds, cfg.eval_round, cfg.max_steps, cfg.lr) == (2, "2", 4, 1e-3)
    assert (cfg.to_dict()["router"], cfg.sim_alias) == ("global", "deployment_bench")  # bench defaults the preset left alone
    assert bench_config(None, []).num_rounds == 2


def test_bad_preset_and_misplaced_config(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        bench_config(str(tmp_path / "missing.toml"), [])
    with pytest.raises(SystemExit):
        bench_main(["--config", "configs/real-smollm2.toml"])


def _rows() -> list[dict]:
    setup = {"wall_s": 5.0, "clients": {"0": {"time_s": 3.0}, "1": {"time_s": 4.0}}, "global_cluster_s": 0.1}
    return [{"round": 1, "time_s": 10.0,
             "timing": {"setup": setup, "train": {"0": {"time_s": 6.0}}, "train_wall_s": 7.5,
                        "evaluate": {"0": {"time_s": 1.0}, "1": {"time_s": 1.5}}, "evaluate_wall_s": 2.0}},
            {"round": 2, "time_s": 8.0, "timing": {"train": {"0": {"time_s": 6.5}}, "train_wall_s": 7.0}}]


def test_stage_walls_and_the_messaging_part_of_each():
    assert stage_walls(_rows()) == {"setup": 5.0, "round 1": 10.0, "round 2": 8.0}
    # a stage's wall minus its slowest client's own message time, summed over the round's message kinds
    assert waiting(_rows()) == {"setup": 1.0, "round 1": 1.5 + 0.5, "round 2": 0.5}


def test_run_config_is_written_as_toml_values_and_ports_are_free():
    assert run_config_arg({"num_rounds": 2, "lr": 0.001, "resume": False, "router": "global"}) == (
        "num_rounds=2 lr=0.001 resume=false router='global'")
    import socket

    base = free_ports(3)
    for port in range(base, base + 3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free: binds
