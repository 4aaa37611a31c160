"""The hub source: which names are hub ids (loading and validation are in tests/data/test_column_mapping.py,
its offline helpers in tests/data/sources/test_hf.py)."""

from __future__ import annotations

from fedrouter.data.sources import is_hub_id, source_for


def test_hub_ids(tmp_path, monkeypatch):
    assert is_hub_id(" squad ") and source_for("squad").name == "hub"
    assert not is_hub_id("multitask") and not is_hub_id("a:b") and not is_hub_id("org/x.jsonl")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "squad").mkdir()  # an existing folder of that name is local data
    assert not is_hub_id("squad") and source_for("squad").name == "local"
