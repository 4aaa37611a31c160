"""dataset_name=builtin: the built-in synthetic benchmark (fedrouter.data.builtin), generated offline."""

from __future__ import annotations

from fedrouter.data.sources.base import OWN_COLUMNS, DataSource, SourceOptions

BUILTIN_DEFAULT_PER_TASK = 250  # builtin pool size per task when dataset_sample is 0


class BuiltinSource(DataSource):
    """Generated records, `dataset_sample` per task (BUILTIN_DEFAULT_PER_TASK when 0) from `seed`; the column
    settings do not apply."""

    name = "builtin"

    def locate(self, dataset_name: str, options: SourceOptions) -> tuple[str, SourceOptions]:
        return "", OWN_COLUMNS

    def load(self, where: str, options: SourceOptions, dataset_sample: int, seed: int) -> tuple[list[dict], str]:
        # Lazy import: the builtin generator is optional for every other source.
        from fedrouter.data.builtin import make_builtin_pool

        return make_builtin_pool(n_per_task=dataset_sample or BUILTIN_DEFAULT_PER_TASK, seed=seed), "builtin"
