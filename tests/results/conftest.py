"""Hand-made run folders of a scenario matrix (written with the project's own writers), shared by the
tests of fedrouter.results: the report's modules and the provenance note."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from fedrouter.config import RunConfig
from fedrouter.results.run_folder import RunFolder

SCENARIO_SETTINGS = {
    "interference": dict(split_strategy="dual", test_distribution="same", router="local", n_clusters="2"),
    "generalization": dict(split_strategy="single", test_distribution="all", router="global", n_clusters="1"),
    "single": dict(split_strategy="single", test_distribution="same", router="local", n_clusters="1"),
}


def make_run(root: Path, scenario: str, method: str, seed: int, rouge1: float, per_task: dict[str, float] | None = None,
             complete: bool = True, **settings) -> RunFolder:
    """A run folder as the simulator leaves it: config.json, metrics.jsonl, results.json."""
    cfg = RunConfig.from_mapping({**SCENARIO_SETTINGS[scenario], "fed_alg": method, "sim_alias": method, "seed": seed,
                                  "output_dir": str(root / scenario), "num_rounds": 2, **settings}, strict=False)
    final = {"rouge1": rouge1, "rouge2": rouge1 / 2, "rougeL": rouge1 * 0.8}
    final.update({f"rouge1/{t}": v for t, v in (per_task or {}).items()})
    folder = RunFolder(cfg.run_dir)
    folder.write_config(cfg.to_dict())
    zero_shot = {"rouge1": 0.01 * (seed + 1), "rouge2": 0.0, "rougeL": 0.01}  # the base model: same for every method
    folder.write_metrics([{"round": 0, "train_loss": None, "eval": zero_shot},
                          {"round": 1, "train_loss": 2.0, "eval": {**final, "rouge1": rouge1 / 2}},
                          {"round": 2, "train_loss": 1.5, "eval": final}])
    if complete:
        folder.write_results({"final_round": 2, "final": final, "fed_alg": method, "seed": seed, "total_time_s": 1.0})
    return folder


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """generalization: fedrouter 0.5/0.7, fedit 0.2/0.4, local 0.25 (one seed);
    interference: fedit 0.3 only, plus an unfinished fedsa run."""
    out = tmp_path / "matrix"
    for seed, fr, fi, qqp in ((0, 0.5, 0.2, 0.9), (1, 0.7, 0.4, 0.7)):
        make_run(out, "generalization", "fedrouter", seed, fr, {"qqp": qqp, "webnlg": 0.1})
        make_run(out, "generalization", "fedit", seed, fi, {"qqp": qqp / 3, "webnlg": 0.3})
    make_run(out, "generalization", "local", 0, 0.25)
    make_run(out, "interference", "fedit", 0, 0.3)
    make_run(out, "interference", "fedsa", 0, 0.1, complete=False)
    return out


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
