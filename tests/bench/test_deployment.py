"""The deployment bench's run settings: bench defaults < preset < key=value overrides (the runs
themselves are compared in the slow tests/runtime/test_clientapp_worker.py)."""

import pytest

from fedrouter.bench.__main__ import main as bench_main
from fedrouter.bench.deployment import bench_config
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
