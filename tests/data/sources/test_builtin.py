"""dataset_name=builtin as a source: its own columns whatever the column settings, its default size."""

from __future__ import annotations

from collections import Counter

from fedrouter.data.sources import BUILTIN_DEFAULT_PER_TASK, SourceOptions, load_pool, source_for


def test_the_column_settings_do_not_apply():
    mapped = SourceOptions(instruction_column="prompt", task_column="kind", input_column="context")
    assert load_pool("builtin", 5, 3, mapped) == load_pool("builtin", 5, 3)


def test_sample_zero_is_the_default_size_per_task():
    counts = Counter(r["task"] for r in load_pool("builtin", 0, 0))
    assert len(counts) == 4 and set(counts.values()) == {BUILTIN_DEFAULT_PER_TASK}


def test_nothing_to_check_or_record():
    source = source_for("builtin")
    assert source.problems(object()) == [] and source.provenance() == {}
