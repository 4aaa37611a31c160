"""The launcher's seed table: final scores per seed, mean ± std, the zero-shot reference, files."""

from __future__ import annotations

import pytest

from fedrouter.results.run_folder import RunFolder
from fedrouter.results.summary import main


def _run(root, seed: int, final: float, base: float | None) -> None:
    folder = RunFolder(root / f"exp_seed{seed}")
    rows = [] if base is None else [{"round": 0, "eval": {"rouge1": base, "rouge2": 0.0, "rougeL": base}}]
    folder.write_metrics(rows + [{"round": 1, "eval": {"rouge1": final, "rouge2": final / 2, "rougeL": final}}])
    folder.write_results({"final_round": 1, "final": {"rouge1": final, "rouge2": final / 2, "rougeL": final}})


def test_seed_table_with_zero_shot_row_and_files(tmp_path, capsys):
    # Prepare: two seeds with a round-0 evaluation, one unfinished run folder (not counted)
    _run(tmp_path, 0, 0.40, 0.01)
    _run(tmp_path, 1, 0.30, 0.03)
    RunFolder(tmp_path / "exp_seed2").write_metrics([{"round": 0, "eval": {"rouge1": 0.5}}])
    # Execute
    assert main([str(tmp_path), "--alias", "exp"]) == 0
    # Assert: mean 0.35, sample std sqrt(0.005) = 0.0707; zero-shot 0.02 ± 0.0141
    md = (tmp_path / "exp_summary.md").read_text()
    assert "| mean ± std | 0.3500 ± 0.0707 | 0.1750 ± 0.0354 | 0.3500 ± 0.0707 |" in md
    assert "| base model, zero-shot (round 0), mean ± std | 0.0200 ± 0.0141 |" in md
    assert "| 2 |" not in md and md in capsys.readouterr().out
    rows = (tmp_path / "exp_summary.csv").read_text().splitlines()
    assert rows[0] == "seed,rouge1,rouge2,rougeL,zero_shot_rouge1,zero_shot_rouge2,zero_shot_rougeL"
    assert rows[1].split(",")[:2] == ["0", "0.400000"] and float(rows[1].split(",")[4]) == pytest.approx(0.01)


def test_runs_without_round_zero_have_no_zero_shot_row(tmp_path):
    _run(tmp_path, 0, 0.40, None)
    assert main([str(tmp_path), "--alias", "exp"]) == 0
    assert "zero-shot" not in (tmp_path / "exp_summary.md").read_text()
    assert (tmp_path / "exp_summary.csv").read_text().splitlines()[1] == "0,0.400000,0.200000,0.400000,,,"


def test_seeds_limits_the_table_to_the_seeds_asked_for(tmp_path, capsys):
    # Prepare: three completed seeds; the launcher asked for one, then for two
    for seed, final in ((0, 0.40), (1, 0.30), (5, 0.10)):
        _run(tmp_path, seed, final, None)
    # Execute / Assert: only seed 0 is in the table, the files and the count
    assert main([str(tmp_path), "--alias", "exp", "--seeds", "0"]) == 0
    md = (tmp_path / "exp_summary.md").read_text()
    assert "over 1 seed(s)" in md and "| 0 |" in md and "| 1 |" not in md and "| 5 |" not in md
    assert [r.split(",")[0] for r in (tmp_path / "exp_summary.csv").read_text().splitlines()[1:]] == ["0"]
    assert main([str(tmp_path), "--alias", "exp", "--seeds", "5,1"]) == 0
    assert "over 2 seed(s)" in (tmp_path / "exp_summary.md").read_text()
    assert "| mean ± std | 0.2000 ± 0.1414 |" in (tmp_path / "exp_summary.md").read_text()
    capsys.readouterr()
    # a seed asked for but not completed is an error naming it, not a smaller table
    assert main([str(tmp_path), "--alias", "exp", "--seeds", "0 2"]) == 1
    assert "exp_seed2" in capsys.readouterr().err
