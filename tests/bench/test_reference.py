"""`--reference`: a preset's run measured the way the reference code's figures were, beside them."""

from __future__ import annotations

import json

from conftest import tiny_settings
from fedrouter.bench.reference import REFERENCE, markdown
from fedrouter.models.backbone import get_backbone


def test_the_reference_configuration_command_reports_what_the_reference_was_measured_by(tmp_path):
    # Prepare: the reference preset made tiny (built-in model and data, short answers)
    from conftest import REPO
    from fedrouter.bench.__main__ import main

    out = tmp_path / "bench"
    # Execute
    rc = main(["--reference", str(REPO / "configs" / "bench-reference.toml"), "--out", str(out),
               "model_name_or_path=builtin:tiny", "dataset_name=builtin", "dataset_sample=100", "dtype=auto",
               "max_new_tokens=6"])
    # Assert: one load per worker, the adapter message is about one LoRA of the model, every process measured
    assert rc == 0
    r = json.loads((out / "bench_reference.json").read_text())
    assert r["loads"] == len(r["loads_per_worker"]) == len(r["worker_peaks_mb"]) and r["loads_per_worker"][0] == 1
    lora_mb = sum(v.nbytes for v in get_backbone(tiny_settings(tmp_path)).zero_like().values()) / 1e6
    assert lora_mb <= r["adapter_message_mb"] < 1.05 * lora_mb  # the adapter, plus a few small arrays
    assert r["driver_peak_mb"] > 0 and r["roofline"]["decode_steps"] > 0 and 0 < r["roofline"]["fraction"] <= 1
    assert r["config"]["seed"] == 111 and r["config"]["max_data_per_client"] == 40
    assert "| base-model loads |" in (out / "bench_reference.md").read_text()


def test_markdown_puts_ours_beside_the_reference_figures():
    r = {"date": "2026-01-01 00:00", "machine": "2 CPUs", "wall_s": 137.5, "driver_peak_mb": 900.0,
         "worker_peaks_mb": [1000.0, 1100.0], "loads": 2, "loads_per_worker": [1, 1], "adapter_message_mb": 1.85,
         "generation_share": 0.5, "rounds_wall_s": 120.0, "communication_mb": 20.0, "final": {"rouge1": 0.25},
         "phases": {"train": 10.0, "generate": 30.0}, "config": {},
         "roofline": {"decode_steps": 100, "row_steps": 800, "weight_mb": 500.0, "bandwidth_gb_s": 20.0,
                      "matmul_gflop_s": 90.0, "memory_floor_s": 2.5, "compute_floor_s": 1.0, "bound": "memory",
                      "measured_s": 25.0, "fraction": 0.1}}
    text = markdown(r, " --reference p.toml")
    assert text.startswith("### `python -m fedrouter.bench --reference p.toml` — 2026-01-01 00:00")
    assert f"| wall time (whole run, incl. start-up) | 138 s | {REFERENCE['wall_s'][0]:.0f} s, " in text
    assert f"| speed-up | {sum(REFERENCE['wall_s']) / 2 / 137.5:.1f}x | |" in text
    assert "| base-model loads | 2 ([1, 1] per worker) | 39 |" in text
    assert "| generate | 30.0 |" in text and "at least 2.5 s (memory-bound)" in text and "**10% of the limit**" in text
