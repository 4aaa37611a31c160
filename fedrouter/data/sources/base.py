"""What every data source is: the `DataSource` interface, the options that map a source's columns to records,
and the registry that turns a `dataset_name` into the source that loads it."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedrouter.config.common import DataSettings

REQUIRED_COLUMNS = ("instruction", "response", "task")
# How messages list the dataset_name values a source takes: in the empty-name error ("brief"), in load errors
# ("full") and in validation's problems ("check", names unquoted as the settings table writes them).
USAGE_STYLES = ("brief", "full", "check")


class DatasetError(ValueError):
    """A data source cannot be loaded; the message says what is wrong and how to fix it."""


def _run_default(name: str) -> Any:
    """The default of the data setting `name`, so a default written here is never a second copy."""
    return DataSettings.defaults()[name]


@dataclass(frozen=True)
class SourceOptions:
    """How records are read from a local file/folder or a hub dataset: which columns hold the instruction,
    response and task (the run settings of the same names), an optional input/context column appended to the
    instruction, and the hub config and split. The defaults are RunConfig's. Hashable, so it is part of the
    pool cache key."""

    instruction_column: str = _run_default("instruction_column")
    response_column: str = _run_default("response_column")
    task_column: str = _run_default("task_column")
    input_column: str = _run_default("input_column")  # "" = none; else instruction + "\n\n" + input when not blank
    dataset_config: str = _run_default("dataset_config")  # hub datasets only: the config (subset); "" = default
    dataset_split: str = _run_default("dataset_split")  # hub datasets only

    @classmethod
    def from_config(cls, cfg: Any) -> SourceOptions:
        """The options a RunConfig (or any object with these attributes) names; absent ones keep defaults."""
        return cls(**{f.name: str(getattr(cfg, f.name, f.default)) for f in dataclasses.fields(cls)})

    def column_settings(self) -> dict[str, str]:
        """setting -> column, for the columns a record needs (input_column only when set)."""
        out = {"instruction_column": self.instruction_column, "response_column": self.response_column,
               "task_column": self.task_column}
        if self.input_column:
            out["input_column"] = self.input_column
        return out

    def problems(self) -> list[str]:
        """Settings left empty that a column-mapped source (local data, hub datasets) needs."""
        out = [f"{key} is empty: it must name a column of the data"
               for key in ("instruction_column", "response_column", "task_column") if not getattr(self, key).strip()]
        if not self.dataset_split.strip():
            out.append("dataset_split is empty: name the split to load, e.g. train")
        return out


# The columns of sources whose records are already {"instruction", "response", "task"} (the built-in data,
# the benchmark's local copy): the column settings do not apply to them.
OWN_COLUMNS = SourceOptions(*REQUIRED_COLUMNS, input_column="")


def resolve_path(path: str) -> str:
    """Absolute path, as pool cache keys hold it, so a later chdir cannot return another folder's pool."""
    return str(Path(path).expanduser().resolve())


class DataSource:
    """One kind of data a `dataset_name` can name. A source sets `name`, says which names it takes
    (`matches`) and loads them (`load`); `usage`, `locate`, `problems` and `provenance` have defaults for a
    source that answers to its own name and needs no checks. Register an instance with `register`."""

    name: str = ""  # the source's name; by default it takes exactly dataset_name=<name>
    # Sources are asked lowest first: the first that matches loads. Hub ids (80) and local paths (90, the
    # source of every name no other takes) come last, so a source with the default claims before them.
    claim_order: int = 50

    def matches(self, dataset_name: str) -> bool:
        """Whether this source loads `dataset_name` (asked in claim order)."""
        return dataset_name == self.name

    def usage(self, style: str) -> str:
        """How messages list the dataset_name values this source takes, in a style of USAGE_STYLES."""
        return self.name if style == "check" else f"'{self.name}'"

    def locate(self, dataset_name: str, options: SourceOptions) -> tuple[Hashable, SourceOptions]:
        """Where the data is now (a resolved path, a folder named by an environment variable) and the options
        that apply to it: the pool cache key, with the sample size and seed."""
        return dataset_name, options

    def load(self, where: Any, options: SourceOptions, dataset_sample: int, seed: int) -> tuple[list[dict], str]:
        """The records of `where` (from `locate`): {"instruction", "response", "task"} plus "split" when the
        source gives one, before cleaning and the per-task cap; and how logs and errors name the data."""
        raise NotImplementedError

    def problems(self, cfg: Any) -> list[str]:
        """What validation reports before a run: why the data the run settings name cannot be loaded on
        this machine, found without loading it (loading errors are reported when the data is split)."""
        return []

    def provenance(self) -> dict[str, Any]:
        """Keys added to the run folder's data.json: where this process's last load came from."""
        return {}


_REGISTERED: list[DataSource] = []  # in the order messages list them


def register(source: DataSource) -> DataSource:
    """Make `source` loadable by dataset_name and listed in messages (after the sources registered before it)."""
    if any(s.name == source.name for s in _REGISTERED):
        raise ValueError(f"a data source named {source.name!r} is already registered")
    _REGISTERED.append(source)
    return source


def unregister(name: str) -> None:
    """Remove the source registered as `name` (tests that register their own)."""
    _REGISTERED[:] = [s for s in _REGISTERED if s.name != name]


def registered() -> tuple[DataSource, ...]:
    return tuple(_REGISTERED)


def _claim_order() -> list[DataSource]:
    return sorted(_REGISTERED, key=lambda s: s.claim_order)  # stable: equal orders keep registration order


def claimed_before(source: DataSource, dataset_name: str) -> bool:
    """Whether a source asked before `source` takes `dataset_name`."""
    return any(s.matches(dataset_name) for s in _claim_order() if s.claim_order < source.claim_order)


def source_for(dataset_name: str) -> DataSource:
    """The registered source that loads `dataset_name` (the first in claim order that matches it)."""
    for source in _claim_order():
        if source.matches(dataset_name):
            return source
    raise DatasetError(f"dataset_name={dataset_name!r} names no data source; use {allowed('full')}")


def allowed(style: str) -> str:
    """The registered sources as messages list them: "A, B, or C"."""
    items = [s.usage(style) for s in _REGISTERED]
    return f"{', '.join(items[:-1])}, or {items[-1]}" if len(items) > 1 else "".join(items)
