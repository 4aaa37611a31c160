"""Atomic file writes: a file is either its old content or its new content, never half-written."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from fedrouter.utils import io


def test_writes_create_folders_and_replace_whole_files(tmp_path):
    path = tmp_path / "a" / "b" / "f.txt"
    io.atomic_write_text(path, "first")
    io.atomic_write_text(path, "second é")
    assert path.read_text(encoding="utf-8") == "second é"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    io.atomic_write_json(path, {"round": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write_json(path, {"round": 2})
    assert json.loads(path.read_text()) == {"round": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_files_get_the_usual_permissions_not_mkstemps_owner_only(tmp_path):
    io.atomic_write_bytes(tmp_path / "f", b"x")
    mode = stat.S_IMODE((tmp_path / "f").stat().st_mode)
    assert mode == 0o666 & ~io._umask()


def test_json_is_sorted_indented_and_takes_numpy_and_paths(tmp_path):
    path = tmp_path / "c.json"
    io.atomic_write_json(path, {"b": np.float32(0.5), "a": np.arange(3), "p": Path("x/y"), "n": np.int64(2)})
    text = path.read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [0, 1, 2], "b": 0.5, "n": 2, "p": "x/y"}
    with pytest.raises(TypeError, match="not JSON serializable"):
        io.atomic_write_json(path, {"s": {1, 2}})
    assert json.loads(path.read_text())["n"] == 2  # the failed write changed nothing


def test_npz_round_trip_keeps_names_dtypes_and_values(tmp_path):
    arrays = {"w": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32), "ids": np.arange(5)}
    io.atomic_save_npz(tmp_path / "s.npz", arrays)
    back = io.load_npz(tmp_path / "s.npz")
    assert set(back) == {"w", "ids"}
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k], v)
