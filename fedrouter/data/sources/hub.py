"""A Hugging Face hub dataset id (`name` or `org/name`), loaded with `datasets.load_dataset` and read through
the column settings; offline, validation checks the local cache without loading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fedrouter.data.sources.hf as hf
from fedrouter.data.sources.base import DatasetError, DataSource, SourceOptions, claimed_before
from fedrouter.data.sources.local import LOCAL_SUFFIXES, to_records
from fedrouter.data.sources.multitask import SCRIPT_REPLACEMENTS

# `name` or `org/name`, as the hub spells dataset ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


class HubDatasetSource(DataSource):
    """A dataset_name that no source asked earlier takes, is not an existing path, has no data-file suffix,
    and is shaped like `name` or `org/name`."""

    name = "hub"
    claim_order = 80

    def matches(self, dataset_name: str) -> bool:
        name = str(dataset_name).strip()
        if not _HUB_ID.match(name) or ".." in name or claimed_before(self, name):
            return False
        path = Path(name).expanduser()
        return not path.exists() and path.suffix.lower() not in LOCAL_SUFFIXES

    def usage(self, style: str) -> str:
        return "a hub dataset id" if style == "brief" else "a Hugging Face hub dataset id (name or org/name)"

    def load(self, where: str, options: SourceOptions, dataset_sample: int, seed: int) -> tuple[list[dict], str]:
        return _load_hub_dataset(where, options), f"{where} (Hugging Face hub)"

    def problems(self, cfg: Any) -> list[str]:
        problem = hub_dataset_problem(cfg.dataset_name, cfg.dataset_config)
        return ([problem] if problem else []) + SourceOptions.from_config(cfg).problems()


def is_hub_id(dataset_name: str) -> bool:
    """True when `dataset_name` is read as a Hugging Face hub dataset id: not a name another source takes
    first (builtin, multitask), not an existing path, no data-file suffix, and shaped like `name` or `org/name`."""
    return HubDatasetSource().matches(dataset_name)


def _script_help(name: str, exc: BaseException) -> str:
    src = SCRIPT_REPLACEMENTS.get(name)
    if src is not None:
        instead = (f"fedrouter loads {src.describe()} instead (dataset_name=multitask; for this task alone "
                   f"download those parquet files and pass their folder as dataset_name)")
    else:
        instead = ("look for a parquet copy of it on the hub (its refs/convert/parquet revision, or a maintained "
                   "copy) and pass that id, or download the files and pass their folder as dataset_name")
    return (f"{name} is a loading-script dataset, which datasets>=4 cannot load; {instead} "
            f"[{type(exc).__name__}: {exc}]")


def _load_hub_dataset(repo_id: str, opts: SourceOptions) -> list[dict]:
    """Any hub dataset, loaded with datasets.load_dataset(id, config, split=...) and mapped by the columns."""
    import datasets

    offline, reason = hf.hub_mode()
    where = f"{repo_id} (config {opts.dataset_config or 'default'}, split {opts.dataset_split})"
    try:
        with hf.forced_offline(offline):
            ds = datasets.load_dataset(repo_id, opts.dataset_config or None, split=opts.dataset_split)
    except Exception as e:  # hub/cache errors come as ConnectionError, FileNotFoundError, ValueError, ...
        if hf.is_script_error(e):
            raise DatasetError(_script_help(repo_id, e)) from e
        if offline:
            raise DatasetError(
                f"dataset_name={repo_id!r} is not an existing file or folder, and as a Hugging Face hub dataset "
                f"it cannot be loaded: {reason}. Go online once (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) to "
                f"fill the cache, or pass a local file or folder [{type(e).__name__}: {e}]"
            ) from e
        raise DatasetError(
            f"dataset_name={repo_id!r} is not an existing file or folder, and loading it from the Hugging Face "
            f"hub failed (dataset_config={opts.dataset_config!r}, dataset_split={opts.dataset_split!r}): "
            f"{type(e).__name__}: {e}"
        ) from e
    if isinstance(ds, datasets.DatasetDict):  # defensive: split=... normally returns one Dataset
        return [r for name, part in ds.items() for r in to_records(part, f"{where} [{name}]", opts)]
    return to_records(ds, where, opts)


def hub_dataset_problem(repo_id: str, config: str = "") -> str | None:
    """A quick check for validation: None unless offline mode is on and the hub dataset `repo_id` (config
    `config`) is not in the local datasets cache (or is a loading-script dataset). Online, problems are left
    to load time, where the error names them."""
    import datasets

    if not (hf.offline_requested() or datasets.config.HF_HUB_OFFLINE):
        return None
    try:
        with hf.forced_offline(True), hf.quiet_datasets():
            datasets.load_dataset_builder(repo_id, config or None)
    except Exception as e:
        if hf.is_script_error(e):
            return f"dataset_name={repo_id!r}: {_script_help(repo_id, e)}"
        return (f"dataset_name={repo_id!r} is not an existing file or folder, and as a Hugging Face hub dataset "
                f"(dataset_config={config!r}) it is not in the local datasets cache "
                f"({datasets.config.HF_DATASETS_CACHE}) while offline mode is on (HF_HUB_OFFLINE/"
                "HF_DATASETS_OFFLINE); go online once to download it, or pass a local file or folder")
    return None
