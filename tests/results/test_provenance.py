"""Provenance: what collect() records, differences() between runs, provenance.json's sessions in the
run folder (one per start of the server, resumes included), and the report's note when runs differ."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import torch
import transformers

from conftest import REPO, tiny_settings
from fedrouter.algorithms.base import get_algorithm
from fedrouter.results.matrix import load_runs
from fedrouter.results.provenance import COMPARED, PACKAGES, collect, differences, git_state
from fedrouter.results.report_markdown import markdown_report
from fedrouter.results.run_folder import RunFolder
from fedrouter.runtime import server_app
from results.conftest import make_run  # tests/results/conftest.py: hand-made run folders

HEX40 = re.compile(r"[0-9a-f]{40}")


def record(**changes) -> dict:
    """A hand-made collect() record; package versions as keyword arguments with _ for -."""
    rec = {"commit": "a" * 40, "dirty": False, "python": "3.11.7", "torch_threads": 2, "cpu": "AMD EPYC",
           "cpu_count": 2, "gpu": [], "platform": "Linux-x86_64",
           "packages": {name: "1.0" for name in PACKAGES} | {"transformers": "5.23.0"}}
    for key, value in changes.items():
        if key.replace("_", "-") in PACKAGES:
            rec["packages"][key.replace("_", "-")] = value
        else:
            rec[key] = value
    return rec


# --- collect ---------------------------------------------------------------------------------------


def test_collect_records_the_installed_versions_and_the_machine():
    rec = collect()
    assert set(rec) == {"commit", "dirty", "python", "packages", "torch_threads", "cpu", "cpu_count", "gpu", "platform"}
    assert set(rec["packages"]) == set(PACKAGES)
    assert rec["packages"]["torch"] == torch.__version__
    assert rec["packages"]["transformers"] == transformers.__version__
    assert rec["python"] == platform.python_version()
    assert rec["torch_threads"] == torch.get_num_threads() and rec["cpu_count"] == os.cpu_count()
    assert isinstance(rec["gpu"], list) and isinstance(rec["cpu"], str) and rec["platform"]
    assert json.loads(json.dumps(rec)) == rec  # JSON as it is


def test_collect_names_the_commit_of_this_checkout():
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the tests do not run from a git checkout")
    rec = collect()
    assert HEX40.fullmatch(rec["commit"]) and rec["commit"] == head.stdout.strip()
    assert isinstance(rec["dirty"], bool)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_git_state_commit_dirty_and_unknown(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / ".gitignore").write_text("venv/\n")
    (repo / "venv" / "pkg").mkdir(parents=True)  # an installed copy inside the checkout's ignored venv
    (repo / "venv" / "pkg" / "__init__.py").write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "x")
    commit, dirty = git_state(repo / "pkg")
    assert HEX40.fullmatch(commit) and dirty is False
    (repo / "pkg" / "__init__.py").write_text("x = 1\n")
    assert git_state(repo / "pkg") == (commit, True)
    assert git_state(repo / "venv" / "pkg") == (None, None)  # not this checkout's code
    (tmp_path / "plain" / "pkg").mkdir(parents=True)
    assert git_state(tmp_path / "plain" / "pkg") == (None, None)  # no checkout at all
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert git_state(repo / "pkg") == (None, None)  # git missing: unknown, no failure


# --- differences -----------------------------------------------------------------------------------


def test_differences_name_each_differing_key_with_run_counts():
    assert differences([record(), record(), record()]) == []
    assert differences([]) == []
    assert differences([record(), record(transformers="5.24.0"), record()]) == [
        "transformers: 5.23.0 (2 runs), 5.24.0 (1 run)"]
    diffs = differences([record(commit="b" * 40, dirty=True, gpu=["NVIDIA H200"], bitsandbytes=None),
                         record(torch_threads=8, cpu_count=16, platform="other")])  # recorded, not compared
    assert diffs == ["commit: aaaaaaaaaaaa (1 run), bbbbbbbbbbbb (1 run)",
                     "dirty: clean (1 run), uncommitted changes (1 run)",
                     "bitsandbytes: 1.0 (1 run), not installed (1 run)",
                     "gpu: NVIDIA H200 (1 run), none (1 run)"]
    assert [d.split(":")[0] for d in diffs] == [k for k in COMPARED if k in ("commit", "dirty", "bitsandbytes", "gpu")]


# --- run folder and server -------------------------------------------------------------------------


def test_run_folder_appends_one_session_per_start(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert folder.read_provenance() is None  # a run folder from before provenance
    folder.write_provenance(1, record(transformers="5.24.0"))
    folder.write_provenance(3)  # the resumed session: this process, collected
    sessions = folder.read_provenance()["sessions"]
    assert [s["started_round"] for s in sessions] == [1, 3]
    assert sessions[0]["packages"]["transformers"] == "5.24.0"  # the first session's record is kept
    assert sessions[1]["packages"]["transformers"] == transformers.__version__
    assert all(datetime.fromisoformat(s["time"]).tzinfo is not None for s in sessions)
    assert not list(folder.path.glob(".*.tmp"))  # written atomically
    folder.clear()  # resume=false: the discarded run's provenance goes with it
    assert folder.read_provenance() is None


def test_server_writes_provenance_at_every_start_including_a_resume(tmp_path, monkeypatch):
    """The real round loop up to where it contacts the clients: fresh start, restart, resume."""

    class Stop(Exception):
        pass

    def no_clients(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(server_app, "Federation", no_clients)
    cfg = tiny_settings(tmp_path, fed_alg="fedit")
    folder = RunFolder(cfg.run_dir)
    folder.path.mkdir(parents=True)
    for _ in range(2):  # the second: a run that never checkpointed starts over at round 1
        with pytest.raises(Stop):
            server_app._run(cfg, None, folder)
    arrays, meta = get_algorithm(cfg.fed_alg).server(cfg).state_dict()
    folder.save_checkpoint(2, arrays, {"round": 2, "algorithm": meta})
    with pytest.raises(Stop):
        server_app._run(cfg, None, folder)  # resumes after round 2's checkpoint
    sessions = folder.read_provenance()["sessions"]
    assert [s["started_round"] for s in sessions] == [1, 1, 3]
    assert sessions[-1]["packages"]["torch"] == torch.__version__


# --- report ----------------------------------------------------------------------------------------


def test_report_flags_a_scenario_whose_runs_ran_on_other_versions(tmp_path):
    # runs of one method over seeds: make_run's scenario settings hold for every method
    make_run(tmp_path, "single", "fedrouter", 0, 0.5).write_provenance(1, record())
    resumed = make_run(tmp_path, "single", "fedrouter", 1, 0.4)
    resumed.write_provenance(1, record())
    resumed.write_provenance(2, record(transformers="5.24.0"))  # the latest session counts
    make_run(tmp_path, "generalization", "fedrouter", 0, 0.5).write_provenance(1, record())
    make_run(tmp_path, "generalization", "fedrouter", 1, 0.4).write_provenance(1, record())  # same: no note
    make_run(tmp_path, "interference", "fedrouter", 0, 0.3)  # only old run folders: nothing to compare
    make_run(tmp_path, "interference", "fedrouter", 1, 0.3)
    md = markdown_report(load_runs(tmp_path), tmp_path)
    lines = [line for line in md.splitlines() if "Provenance" in line]
    assert lines == ["- single: Provenance differs between runs: transformers: 5.23.0 (1 run), 5.24.0 (1 run)"]

    make_run(tmp_path, "single", "fedrouter", 2, 0.3)  # an old run folder beside recorded ones: said once
    md = markdown_report(load_runs(tmp_path), tmp_path)
    lines = [line for line in md.splitlines() if "Provenance" in line]
    assert lines == ["- single: Provenance differs between runs: transformers: 5.23.0 (1 run), 5.24.0 (1 run); "
                     "unknown for 1 run without provenance.json (fedrouter_seed2)"]
