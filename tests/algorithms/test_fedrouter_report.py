"""fedrouter.algorithms.fedrouter_report: the routing section and heat-map the report adds from FedRouter's
run folders (their diagnostics.json routing tables)."""

import json

from fedrouter.algorithms.fedrouter_report import report_plots, report_sections

TABLE = {"clusters": {"0": "qqp", "1": "samsum"}, "accuracy": 0.95,
         "table": {"qqp": {"0": 18.0, "1": 1.0, "fallback": 1.0}, "samsum": {"1": 20.0},
                   "webnlg": {"0": 3.0, "fallback": 7.0}},
         "per_task_accuracy": {"qqp": 0.9, "samsum": 1.0}, "unseen_tasks": ["webnlg"], "seen_rejected": 0.025,
         "seen_rejected_count": 1.0, "unseen_caught": 0.7, "unseen_caught_count": 7.0, "unseen_total": 10.0}


def _run(path, accuracy):
    path.mkdir(parents=True)
    (path / "diagnostics.json").write_text(json.dumps({"routing": {"0": {**TABLE, "accuracy": 0.5},
                                                                   "6": {**TABLE, "accuracy": accuracy}}}))
    return path


def test_the_routing_section_shows_the_last_rounds_table_per_scenario(tmp_path):
    runs = [("unseen_webnlg", 0, _run(tmp_path / "a", 0.95)), ("unseen_webnlg", 1, _run(tmp_path / "b", 0.9))]
    text = "\n".join(report_sections(runs))
    assert "Routing accuracy seed 0: 0.950, seed 1: 0.900." in text  # the last round (6), not round 0
    assert "unseen inputs caught 0.700, 0.700" in text
    assert "| true task | 0 (qqp) | 1 (samsum) | fallback |" in text
    assert "| webnlg (unseen) | 3 |  | 7 |" in text
    assert "| accuracy (mean over seeds) | 0.90 | 1.00 |" in text
    # a run without routing tables (diagnostics off) adds nothing
    (tmp_path / "c").mkdir()
    assert report_sections([("x", 0, tmp_path / "c")]) == []


def test_the_heat_map_is_written_per_scenario(tmp_path):
    written = report_plots([("unseen_webnlg", 0, _run(tmp_path / "a", 0.95))], tmp_path)
    assert tmp_path / "routing_unseen_webnlg.png" in written
    assert (tmp_path / "routing_unseen_webnlg.png").stat().st_size > 1000
