"""Local data: a JSONL/JSON/CSV/parquet file, a folder of such files, or a folder written by `datasets`'
save_to_disk, read through the column settings (SourceOptions). Every name no other source takes is a path."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import fedrouter.data.sources.hf as hf
from fedrouter.data.sources.base import DatasetError, DataSource, SourceOptions, allowed, resolve_path

SPLIT_VALUES = ("train", "test")
LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# Files that mark a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk.
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
SAMPLE_DIR = "path/to/multitask"  # how messages show a local copy of the benchmark (one file per task)


class LocalSource(DataSource):
    """A path to a file or folder: the source of every dataset_name no other source takes, so a missing
    path is reported here."""

    name = "local"
    claim_order = 90

    def matches(self, dataset_name: str) -> bool:
        return True

    def usage(self, style: str) -> str:
        if style == "brief":
            return "a path to a file or folder"
        if style == "check":
            return ("a path to JSONL/CSV/parquet data (columns named by instruction_column/response_column/"
                    "task_column)")
        return f"an existing file ({', '.join(LOCAL_SUFFIXES)}) or folder of such files (e.g. {SAMPLE_DIR})"

    def locate(self, dataset_name: str, options: SourceOptions) -> tuple[str, SourceOptions]:
        return resolve_path(dataset_name), options

    def load(self, where: str, options: SourceOptions, dataset_sample: int, seed: int) -> tuple[list[dict], str]:
        return load_local(Path(where), options), where

    def problems(self, cfg: Any) -> list[str]:
        out = []
        name = cfg.dataset_name
        if not Path(name).expanduser().exists():
            out.append(f"dataset_name={name!r}: no such file or folder; allowed: {allowed('check')}")
        return out + SourceOptions.from_config(cfg).problems()



def load_local(path: Path, opts: SourceOptions) -> list[dict]:
    if not path.exists():
        raise DatasetError(
            f"dataset path {path} does not exist; dataset_name must be {allowed('full')}"
        )
    if path.is_dir():
        if any((path / m).is_file() for m in SAVED_MARKERS):
            return _load_saved(path, opts)
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LOCAL_SUFFIXES)
        if not files:
            raise DatasetError(
                f"folder {path} holds no {'/'.join(LOCAL_SUFFIXES)} files and is not a folder written by "
                "datasets' save_to_disk"
            )
        return [r for f in files for r in _load_file(f, opts)]
    return _load_file(path, opts)


def _load_file(path: Path, opts: SourceOptions) -> list[dict]:
    builder = LOCAL_SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_SUFFIXES)}"
        )
    import datasets

    # CSV: keep empty cells as "" and texts like "NA"/"None" as text instead of turning them into nulls.
    kwargs: dict[str, Any] = {"na_filter": False} if builder == "csv" else {}
    try:
        with hf.quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as e:  # datasets raises many types for unreadable files; report them uniformly
        raise DatasetError(f"{path}: could not be read as {builder}: {type(e).__name__}: {e}") from e
    return to_records(ds, str(path), opts)


def _load_saved(path: Path, opts: SourceOptions) -> list[dict]:
    import datasets

    try:
        with hf.quiet_datasets():
            loaded = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DatasetError(
            f"{path}: could not be read with datasets.load_from_disk: {type(e).__name__}: {e}"
        ) from e
    if isinstance(loaded, datasets.DatasetDict):
        # A DatasetDict's split names become the split of rows that have no split column of their own.
        return [
            r
            for name, ds in loaded.items()
            for r in to_records(ds, f"{path} [{name}]", opts, default_split=name)
        ]
    return to_records(loaded, str(path), opts)


def to_records(ds: Any, where: str, opts: SourceOptions,
                default_split: str | None = None) -> list[dict]:
    """Map a Dataset's columns to records through the column settings; "split" is an optional column."""
    wanted = opts.column_settings()
    missing = {setting: col for setting, col in wanted.items() if col not in ds.column_names}
    if missing:
        raise DatasetError(
            f"{where}: missing required column(s) {', '.join(missing.values())} (named by "
            f"{', '.join(missing)}); found {', '.join(ds.column_names) or 'none'}. Set "
            f"{'/'.join(missing)} to this data's column names (instruction_column, response_column and "
            "task_column are required, input_column is optional; an optional 'split' column holds train/test)"
        )
    has_split = "split" in ds.column_names
    columns = list(dict.fromkeys([*wanted.values(), *(["split"] if has_split else [])]))
    # One bulk Arrow -> Python conversion; indexing a datasets Column row by row is ~100x slower.
    cols = ds.select_columns(columns).to_dict()
    records: list[dict] = []
    for i in range(len(ds)):
        instruction = _as_text(cols[opts.instruction_column][i])
        if opts.input_column:
            extra = _as_text(cols[opts.input_column][i])
            if extra.strip():
                instruction = f"{instruction}\n\n{extra}"
        rec = {
            "instruction": instruction,
            "response": _as_text(cols[opts.response_column][i]),
            "task": _as_text(cols[opts.task_column][i]),
        }
        split = cols["split"][i] if has_split else default_split
        # Null/blank split cells mean "no split given"; train_test_split then splits the pool itself.
        if split is not None and str(split) != "":
            if split not in SPLIT_VALUES:
                raise DatasetError(
                    f"{where}: row {i} has split value {split!r}; allowed values are 'train' and 'test' "
                    "(rename it, or drop the split column to split by train_split)"
                )
            rec["split"] = split
        records.append(rec)
    return records


def _as_text(value: Any) -> str:
    # Numbers (e.g. a CSV label column parsed as int) become text; nulls become "" and are dropped as empty.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)
