"""dataset_name=multitask from today's script-free parquet sources, tested offline on tiny parquet files laid
out as those hub repos are (FEDROUTER_HUB_MIRROR, or datasets.load_dataset routed to local folders)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from fedrouter.data.sources import (
    HUB_MIRROR_ENV,
    MULTITASK_SOURCES,
    DatasetError,
    hf,
    load_pool,
    multitask,
    multitask_sources,
)

N_QQP, N_GIGA, N_SAM, N_WEB = 12, 9, 4, 3


def _qqp(n=N_QQP):
    return [{"question1": f"How do I {i}?", "question2": f"What is {i}?", "label": i % 2, "idx": i} for i in range(n)]


def _giga(start, n):
    return [{"document": f"document {i} text", "summary": f"headline {i}"} for i in range(start, start + n)]


def _sam(n=N_SAM):
    return [{"id": f"1353{i}", "dialogue": f"Amanda: hi {i}\r\nJerry: hello", "summary": f"They greet {i}."}
            for i in range(n)]


def _web(n=N_WEB, lang="en"):
    return [{"gem_id": f"web_nlg_{lang}-train-{i}",
             "input": [f"Aarhus | leader | Person_{i}", "Aarhus | country | Denmark"],
             "target": f"Person {i} leads Aarhus, Denmark.", "references": [], "category": "City",
             "webnlg_id": f"Id{i}"} for i in range(n)]


def _write(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)


GLUE_README = """---
configs:
- config_name: cola
  data_files:
  - split: train
    path: cola/train-*
- config_name: qqp
  data_files:
  - split: train
    path: qqp/train-*
  - split: validation
    path: qqp/validation-*
---
"""


@pytest.fixture
def hub_copy(tmp_path) -> Path:
    """The four sources' files under <root>/<repo id>/ as in the repos (plus files that must not be read)."""
    root = tmp_path / "mirror"
    _write(root / "nyu-mll/glue/qqp/train-00000-of-00001.parquet", _qqp())
    _write(root / "nyu-mll/glue/qqp/validation-00000-of-00001.parquet", _qqp(2))
    _write(root / "nyu-mll/glue/cola/train-00000-of-00001.parquet", [{"sentence": "x", "label": 1, "idx": 0}])
    (root / "nyu-mll/glue/README.md").write_text(GLUE_README, encoding="utf-8")
    _write(root / "Harvard/gigaword/default/train/0000.parquet", _giga(0, 5))  # two shards, read in order
    _write(root / "Harvard/gigaword/default/train/0001.parquet", _giga(5, N_GIGA - 5))
    _write(root / "Harvard/gigaword/default/test/0000.parquet", _giga(100, 2))
    _write(root / "Samsung/samsum/samsum/train-00000-of-00001.parquet", _sam())
    _write(root / "Samsung/samsum/samsum/test-00000-of-00001.parquet", _sam(1))
    _write(root / "GEM/web_nlg/en/train/0000.parquet", _web())
    _write(root / "GEM/web_nlg/en/validation/0000.parquet", _web(2))
    _write(root / "GEM/web_nlg/ru/train/0000.parquet", _web(2, lang="ru"))
    return root


def _expected(first_n: dict[str, int | None]) -> list[dict]:
    """Today's record construction, computed independently of the loader."""
    from datasets import Dataset

    def head(rows, n):
        ds = Dataset.from_list(rows)
        return ds.shuffle(seed=0).select(range(min(n, len(ds)))).to_list() if n is not None else rows

    out = [{"instruction": f"{r['question1']}-{r['question2']}", "response": "Yes" if r["label"] == 1 else "No",
            "task": "qqp"} for r in head(_qqp(), first_n["qqp"])]
    out += [{"instruction": r["document"], "response": r["summary"], "task": "gigaword"}
            for r in head(_giga(0, N_GIGA), first_n["gigaword"])]
    out += [{"instruction": r["dialogue"], "response": r["summary"], "task": "samsum"} for r in _sam()]
    out += [{"instruction": str(r["input"]), "response": r["target"], "task": "webnlg"} for r in _web()]
    return out


def test_sources_table_is_script_free_and_pinned():
    table = multitask_sources()
    assert [s["task"] for s in table] == ["qqp", "gigaword", "samsum", "webnlg"]
    by_task = {s["task"]: s for s in table}
    assert (by_task["qqp"]["repo_id"], by_task["qqp"]["config"]) == ("nyu-mll/glue", "qqp")
    assert by_task["gigaword"]["revision"] == by_task["webnlg"]["revision"] == "refs/convert/parquet"
    assert by_task["qqp"]["first_n"] == by_task["gigaword"]["first_n"] == 30_000
    assert by_task["samsum"]["first_n"] is None and by_task["webnlg"]["first_n"] is None
    for s in table:
        assert s["data_files"].endswith(".parquet") and s["split"] == "train" and s["revision"]


def test_mirror_loads_the_benchmark_with_todays_records(monkeypatch, hub_copy, caplog):
    small = tuple(dataclasses.replace(s, first_n=5) if s.first_n else s for s in MULTITASK_SOURCES)
    monkeypatch.setattr(multitask, "MULTITASK_SOURCES", small)
    monkeypatch.setenv(HUB_MIRROR_ENV, str(hub_copy))
    with caplog.at_level(logging.INFO, logger="fedrouter.data"):
        pool = load_pool("multitask", 0, 0)
    assert pool == _expected({"qqp": 5, "gigaword": 5})
    assert "multitask webnlg: 3 of 3 rows of GEM/web_nlg" in caplog.text
    assert "multitask qqp: 5 of 12 rows of nyu-mll/glue" in caplog.text
    loaded = {s["task"]: s["loaded_from"] for s in multitask_sources()}
    assert loaded["samsum"] == f"mirror:{hub_copy / 'Samsung/samsum'}"


def test_mirror_without_a_sources_files_names_them(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(HUB_MIRROR_ENV, str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match=r"no files match nyu-mll/glue/qqp/train-\*\.parquet"):
        load_pool("multitask", 0, 0)


def test_hub_path_calls_load_dataset_with_the_tables_repo_files_and_revision(monkeypatch, hub_copy):
    """The online path, with datasets.load_dataset routed to the local copy of each repo."""
    import datasets

    real = datasets.load_dataset
    calls = []

    def routed(path, name=None, *, data_files=None, revision=None, split=None, **kwargs):
        calls.append((path, name, data_files, revision, split))
        return real(str(hub_copy / path), name, data_files=data_files, split=split, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", routed)
    monkeypatch.setattr(hf, "hub_mode", lambda: (False, ""))
    monkeypatch.setattr(multitask, "_resolved_commit", lambda src, offline: "0" * 40)
    pool = load_pool("multitask", 0, 0)
    assert calls == [(s.repo_id, None, s.data_files, s.revision, "train") for s in MULTITASK_SOURCES]
    assert pool == _expected({"qqp": 30_000, "gigaword": 30_000})  # the cap keeps every row of these tiny files
    assert {s["loaded_from"] for s in multitask_sources()} == {"0" * 40}


@pytest.mark.parametrize("offline", [True, False])
@pytest.mark.parametrize("error", ["runtime", "not_found"])
def test_loading_script_failure_is_reported_as_such_never_as_offline(monkeypatch, offline, error):
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    message = "Dataset scripts are no longer supported, but found samsum.py"

    def script_dataset(*args, **kwargs):
        raise RuntimeError(message) if error == "runtime" else DatasetNotFoundError(message)

    monkeypatch.setattr(datasets, "load_dataset", script_dataset)
    monkeypatch.setattr(hf, "hub_mode", lambda: (offline, "offline mode is on (HF_HUB_OFFLINE)"))
    with pytest.raises(DatasetError) as err:
        load_pool("multitask", 0, 0)
    msg = str(err.value)
    assert "glue/qqp is a loading-script dataset, which datasets>=4 cannot load" in msg
    assert "fedrouter loads nyu-mll/glue@" in msg and "instead" in msg
    assert "offline" not in msg.lower()


def test_other_online_failures_do_not_blame_offline_mode(monkeypatch):
    import datasets

    def moved(*args, **kwargs):
        raise FileNotFoundError("Unable to find 'hf://datasets/Harvard/gigaword@refs/convert/parquet/default/...'")

    monkeypatch.setattr(datasets, "load_dataset", moved)
    monkeypatch.setattr(hf, "hub_mode", lambda: (False, ""))
    with pytest.raises(DatasetError) as err:
        load_pool("multitask", 0, 0)
    msg = str(err.value)
    assert "could not load nyu-mll/glue@" in msg and HUB_MIRROR_ENV in msg and "offline" not in msg.lower()


# ------------------------------------------------------------------------------- the source's own checks


def test_problems_name_the_environment_variable_that_is_wrong(monkeypatch, tmp_path):
    from fedrouter.config import RunConfig
    from fedrouter.data.sources import MULTITASK_DIR_ENV, source_for

    source, cfg = source_for("multitask"), RunConfig().replace(dataset_name="multitask")
    assert source.problems(cfg) == []
    monkeypatch.setenv(HUB_MIRROR_ENV, str(tmp_path / "file.txt"))
    (tmp_path / "file.txt").write_text("x")
    assert source.problems(cfg) == [f"{HUB_MIRROR_ENV}={str(tmp_path / 'file.txt')!r} is not a folder"]
    monkeypatch.setenv(MULTITASK_DIR_ENV, str(tmp_path / "nope"))  # the local copy wins over the mirror
    assert source.problems(cfg) == [f"{MULTITASK_DIR_ENV}={str(tmp_path / 'nope')!r} does not exist"]
    with pytest.raises(DatasetError, match=f"{MULTITASK_DIR_ENV} points at .*nope, which does not exist"):
        load_pool("multitask", 0, 0)


def test_data_json_records_the_sources_table(monkeypatch, hub_copy):
    from fedrouter.data.sources import source_for

    monkeypatch.setenv(HUB_MIRROR_ENV, str(hub_copy))
    load_pool("multitask", 0, 0)
    assert source_for("multitask").provenance() == {"sources": multitask_sources()}
    assert {s["loaded_from"] for s in multitask_sources()} == {f"mirror:{hub_copy / s.repo_id}"
                                                               for s in MULTITASK_SOURCES}
