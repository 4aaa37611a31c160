"""Fixtures shared by the data-source tests: a fresh pool cache and environment, and a toy source."""

from __future__ import annotations

import pytest

from fedrouter.data.sources import HUB_MIRROR_ENV, MULTITASK_DIR_ENV, DataSource, clear_pool_cache, register, unregister


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    # The pool cache is per process, and the benchmark's environment variables change what 'multitask' is.
    monkeypatch.delenv(MULTITASK_DIR_ENV, raising=False)
    monkeypatch.delenv(HUB_MIRROR_ENV, raising=False)
    clear_pool_cache()
    yield
    clear_pool_cache()


class ToySource(DataSource):
    """dataset_name=toy:<n>: n tasks of records generated in memory, `dataset_sample` per task (12 when 0)."""

    name = "toy"

    def matches(self, dataset_name: str) -> bool:
        return dataset_name.startswith("toy:")

    def usage(self, style: str) -> str:
        return "toy:<tasks>" if style == "check" else "'toy:<tasks>'"

    def load(self, where, options, dataset_sample, seed):
        n_tasks = int(where.removeprefix("toy:"))
        return [{"instruction": f"toy question {i} of task {t}", "response": f"answer {i + seed}", "task": f"toy{t}"}
                for t in range(n_tasks) for i in range(dataset_sample or 12)], f"toy data ({n_tasks} tasks)"

    def problems(self, cfg):
        count = cfg.dataset_name.removeprefix("toy:")
        return [] if count.isdigit() else [f"dataset_name={cfg.dataset_name!r}: toy:<tasks> takes a number of tasks"]

    def provenance(self):
        return {"toy": "generated in memory"}


@pytest.fixture
def toy_source():
    source = register(ToySource())
    yield source
    unregister(source.name)
    clear_pool_cache()
