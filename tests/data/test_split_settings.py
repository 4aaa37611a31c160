"""The split settings end to end: RunConfig -> validation -> all_client_data and client_task_counts."""

from __future__ import annotations

import json

import pytest

from fedrouter.config import RunConfig
from fedrouter.data.federated import all_client_data, client_task_counts
from fedrouter.validation import problems, source_problems

TASKS = ("summarize", "translate", "classify")


def _write_jsonl(path, n_per_task: int = 60, tasks: tuple[str, ...] = TASKS, train_only: tuple[str, ...] = TASKS):
    """n_per_task records of each task; tasks outside `train_only` get a 'test' split value only."""
    rows = []
    for t in tasks:
        for i in range(n_per_task):
            row = {"instruction": f"{t} question {i}", "response": f"{t} answer {i}", "task": t}
            if train_only != tasks:
                row["split"] = "test" if t not in train_only or i % 5 == 0 else "train"
            rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _cfg(data: str, **kw) -> RunConfig:
    return RunConfig.from_mapping({"dataset_name": data, "dataset_sample": 0, "num_clients": 5, "sample_clients": 5,
                                   "split_strategy": "dirichlet", "dirichlet_min_records": 5, "seed": 3, **kw})


def test_dirichlet_on_a_local_three_task_file(tmp_path):
    cfg = _cfg(_write_jsonl(tmp_path / "three.jsonl"))
    clients = all_client_data(cfg)
    assert len(clients) == 5 and all(c.task_names == TASKS for c in clients)
    assert sum(len(c.train) for c in clients) == 3 * 48  # train_split 0.8 of 60 per task, every record used
    assert min(len(c.train) for c in clients) >= 5
    counts = client_task_counts(cfg)
    assert list(counts) == ["0", "1", "2", "3", "4"]
    for c in clients:
        entry = counts[str(c.client_id)]
        assert entry["tasks"] == list(c.tasks)
        assert list(entry["train"]) == list(TASKS) and sum(entry["train"].values()) == len(c.train)
        assert sum(entry["test"].values()) == len(c.test)
    assert json.loads(json.dumps(counts)) == counts  # what clients.json holds


def test_unseen_auto_on_a_file_with_a_test_only_task(tmp_path):
    data = _write_jsonl(tmp_path / "split.jsonl", train_only=TASKS[:2])
    cfg = _cfg(data, unseen_tasks="auto", test_distribution="all", split_strategy="single")
    clients = all_client_data(cfg)
    assert all(c.unseen_tasks == ("classify",) and "classify" not in c.tasks for c in clients)
    assert all(any(r["task"] == "classify" for r in c.test) for c in clients)
    assert all(not any(r["task"] == "classify" for r in c.train) for c in clients)


def test_unknown_unseen_task_is_reported_by_validation(tmp_path):
    cfg = _cfg(_write_jsonl(tmp_path / "three.jsonl"), unseen_tasks="translate,poetry")
    found = source_problems(cfg)
    assert len(found) == 1
    assert "unseen_tasks names unknown task(s) poetry; the data's tasks are summarize, translate, classify" in found[0]


def test_too_many_tasks_per_client_is_reported_by_validation(tmp_path):
    cfg = _cfg(_write_jsonl(tmp_path / "three.jsonl"), split_strategy="multi", tasks_per_client=4)
    assert "tasks_per_client=4 needs at least 4 training tasks" in " ".join(source_problems(cfg))


@pytest.mark.parametrize("setting, value, message", [
    ("tasks_per_client", 0, "tasks_per_client=0 must be >= 1"),
    ("dirichlet_alpha", 0, "dirichlet_alpha=0.0 must be a finite number > 0"),
    ("dirichlet_min_records", 0, "dirichlet_min_records=0 must be >= 1"),
    ("split_strategy", "triple", "allowed: single, dual, multi, all, dirichlet"),
])
def test_settings_checks_name_the_setting(setting, value, message):
    found = problems(RunConfig.from_mapping({setting: value}), sources=False)
    assert any(message in p for p in found), found


@pytest.mark.parametrize("split", ["multi", "dirichlet"])
def test_new_split_names_are_valid(split):
    assert problems(RunConfig.from_mapping({"split_strategy": split}), sources=False) == []
