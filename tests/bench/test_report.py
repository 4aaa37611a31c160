"""The benchmark's verdicts and its markdown and file output."""

from __future__ import annotations

import json

from fedrouter.bench.report import _phase_order, markdown, verdicts, write_report


def test_bench_report_states_the_measured_client_count_and_orders_phases():
    ratios = verdicts({"overhead": 1.1, "routed_eval_speedup": 4.0}, clients=4)
    assert ratios[0]["what"].endswith("(4 clients)") and ratios[0]["pass"]
    assert ratios[1]["name"] == "routed_eval_speedup" and ratios[1]["pass"] is None  # information only
    assert not verdicts({"memory": 1.3}, clients=4)[0]["pass"]  # target <= 1.2
    assert _phase_order({"aggregate": 1.0, "custom": 1.0, "train": 1.0, "load": 1.0}) == [
        "load", "train", "aggregate", "custom"]


def _report() -> dict:
    stage = {"stage": "round 1", "wall_s": 2.0, "compute_s": 1.6}
    return {
        "argv": " --quick", "date": "2026-01-01 00:00", "machine": "2 CPUs", "bench_wall_s": 100.0, "run": "a run",
        "clients": 4, "ratios": verdicts({"overhead": 1.25, "memory": 1.1}, 4),
        "phases": {"train": 3.0, "load": 1.0, "my_phase": 0.5},
        "overhead": {"overhead_s": 0.4, "setup_overhead_s": 0.2, "stages": [stage]},
        "routed_eval": {"samples": 32, "ours_s": 1.0, "reference_s": 2.0, "reference_load_s": 0.5, "reference_loads": 5,
                        "same_routing": 1.0, "same_predictions": 0.75},
        "generation": {"prompts": 32, "ours_prompts_per_s": 10.0, "plain_prompts_per_s": 9.0, "same_outputs": 1.0},
        "memory": {"workers": 2, "worker_peaks_mb": [900.0, 950.0], "one_process_mb": 800.0,
                   "one_process_per_client_mb": [780.0, 800.0], "counted": "Counted: workers."},
        "scaling": [{"clients": 4, "dataset_sample": 400, "workers": 2, "round_wall_s": 5.0, "train_wall_s": 4.0,
                     "train_per_client_s": 1.0, "aggregate_s": 0.01, "global_cluster_s": 0.02,
                     "worker_peak_rss_mb": 1800.0}],
        "server": {"clients": 200, "centroids_per_client": 4, "dim": 2048, "adapter_params": 16384,
                   "global_clustering_s": 0.2, "of_which_kmeans_and_silhouette_s": 0.15, "of_which_mapping_s": 0.01,
                   "bare_kmeans_s": 0.14, "aggregation_s": 0.3, "of_which_deserialization_s": 0.1},
        "server_adapter": "the LoRA of builtin:tiny",
    }


def test_markdown_states_every_ratio_with_its_verdict_and_the_phases_in_pipeline_order():
    text = markdown(_report())
    assert text.startswith("### `python -m fedrouter.bench --quick` — 2026-01-01 00:00\n")
    assert "| overhead: wall time of the federated rounds / their compute (4 clients) | 1.25 | <= 1.15 | FAIL |" in text
    assert "| 1.10 | <= 1.2 | PASS |" in text
    phases = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| load:") or
              line.startswith("| training") or line.startswith("| my_phase")]
    assert phases == ["| load: tokenizer + base model + PEFT wrap (once per worker)", "| training", "| my_phase"]
    assert "| round 1 | 2.000 | 1.600 | 1.25 |" in text
    assert "identical predictions for 75%" in text and "100 ms each" in text  # 0.5 s over 5 loads
    assert "**Decoding against the hardware limit**" not in text  # no roofline measured: no paragraph
    assert "| 4 | 400 | 2 | 5.000 |" in text and "(the LoRA of builtin:tiny)" in text


def test_write_report_stamps_and_writes_json_and_markdown(tmp_path, capsys):
    write_report(tmp_path / "out", "bench_x", {"value": 1.5}, lambda r: f"value {r['value']} on {r['machine']}\n")
    data = json.loads((tmp_path / "out" / "bench_x.json").read_text())
    assert data["value"] == 1.5 and data["date"] and "CPUs" in data["machine"]
    assert (tmp_path / "out" / "bench_x.md").read_text() == f"value 1.5 on {data['machine']}\n"
    assert "bench_x.md" in capsys.readouterr().out
