"""bench --population: a whole run at a given client count, with DP, its phase times and memory in the report."""

from __future__ import annotations

import json

from fedrouter.bench.__main__ import main


def test_population_report_has_times_memory_and_epsilon(tmp_path):
    out = tmp_path / "b"
    assert main(["--population", "12", "--sampled", "4", "--out", str(out), "num_rounds=1", "eval_round=1",
                 "max_steps=1", "max_new_tokens=4", "max_eval_size=2", "dp=central", "router_model=centroid",
                 "diagnostics=false"]) == 0
    point = json.loads((out / "population.json").read_text())["points"][0]
    assert point["clients"] == 12 and point["sampled"] == 4
    assert point["setup_s"] > 0 and point["train_round_s"] > 0 and point["worker_peak_mb"]
    assert point["epsilon"] > 0
    assert "| 12 | 4 |" in (out / "population.md").read_text()
