"""dataset_name=multitask, the paper's benchmark (QQP, Gigaword, SAMSum, WebNLG): from a local copy of its
records ($FEDROUTER_MULTITASK_DIR), a local mirror of its hub sources ($FEDROUTER_HUB_MIRROR), or the hub's
script-free parquet sources at pinned revisions. data.json records where each task's rows came from."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fedrouter.data.sources.hf as hf
from fedrouter.data.sources.base import OWN_COLUMNS, DatasetError, DataSource, SourceOptions, resolve_path
from fedrouter.data.sources.local import SAMPLE_DIR, load_local
from fedrouter.utils import process_state

logger = logging.getLogger("fedrouter.data")

MULTITASK_DIR_ENV = "FEDROUTER_MULTITASK_DIR"
HUB_MIRROR_ENV = "FEDROUTER_HUB_MIRROR"  # a folder <mirror>/<repo id>/<files as in the repo> replacing the hub
HUB_FIRST_N = 30_000  # the paper keeps the first 30k of the shuffled QQP and Gigaword train splits


class MultitaskSource(DataSource):
    """dataset_name=multitask: $FEDROUTER_MULTITASK_DIR when set, else $FEDROUTER_HUB_MIRROR when set, else
    the hub. The benchmark has its own columns, whatever the column settings say."""

    name = "multitask"

    def locate(self, dataset_name: str, options: SourceOptions) -> tuple[tuple[str, str], SourceOptions]:
        env_dir = os.environ.get(MULTITASK_DIR_ENV, "").strip()
        mirror = os.environ.get(HUB_MIRROR_ENV, "").strip()
        if env_dir:
            return ("dir", resolve_path(env_dir)), OWN_COLUMNS
        return ("mirror", resolve_path(mirror)) if mirror else ("hub", ""), OWN_COLUMNS

    def load(self, where: tuple[str, str], options: SourceOptions, dataset_sample: int, seed: int
             ) -> tuple[list[dict], str]:
        kind, path = where
        if kind == "dir":
            if not Path(path).exists():
                raise DatasetError(
                    f"{MULTITASK_DIR_ENV} points at {path}, which does not exist; set it to a folder of "
                    f"JSONL/CSV/parquet files (e.g. {SAMPLE_DIR}) or unset it to use the Hugging Face hub"
                )
            return load_local(Path(path), options), f"multitask ({MULTITASK_DIR_ENV}={path})"
        if kind == "mirror":
            return _load_hub_multitask(mirror=path), f"multitask ({HUB_MIRROR_ENV}={path})"
        return _load_hub_multitask(), "multitask (Hugging Face hub)"

    def problems(self, cfg: Any) -> list[str]:
        if os.environ.get(MULTITASK_DIR_ENV):
            if not Path(os.environ[MULTITASK_DIR_ENV]).exists():
                return [f"{MULTITASK_DIR_ENV}={os.environ[MULTITASK_DIR_ENV]!r} does not exist"]
        elif os.environ.get(HUB_MIRROR_ENV):
            if not Path(os.environ[HUB_MIRROR_ENV]).is_dir():
                return [f"{HUB_MIRROR_ENV}={os.environ[HUB_MIRROR_ENV]!r} is not a folder"]
        return []

    def provenance(self) -> dict[str, Any]:
        return {"sources": multitask_sources()}


@dataclass(frozen=True)
class HubSource:
    """Where one task of the 'multitask' benchmark is loaded from: script-free parquet files of a hub repo
    at a fixed revision. `data_files` is a glob inside the repo; `first_n` caps the rows kept after
    shuffle(seed=0) (None = every row, unshuffled)."""

    task: str
    historical: str  # what the paper's code passed to load_dataset (a loading-script dataset today)
    repo_id: str
    config: str
    split: str
    revision: str
    data_files: str
    fields: tuple[str, ...]
    first_n: int | None

    def describe(self) -> str:
        return f"{self.repo_id}@{self.revision} ({self.data_files})"


MULTITASK_SOURCES: tuple[HubSource, ...] = (
    # GLUE's maintained parquet copy (its loading script was replaced by parquet files), at a pinned commit.
    HubSource("qqp", "glue/qqp", "nyu-mll/glue", "qqp", "train", "4c50f6d2c71ecad30a90f5da22d5392673f3ab05",
              "qqp/train-*.parquet", ("question1", "question2", "label"), HUB_FIRST_N),
    # The hub's automatic parquet conversion of the script dataset (same rows, same order).
    HubSource("gigaword", "gigaword", "Harvard/gigaword", "default", "train", "refs/convert/parquet",
              "default/train/*.parquet", ("document", "summary"), HUB_FIRST_N),
    # datasets' convert_to_parquet output for SAMSum (pull request #7 "Convert dataset to Parquet").
    HubSource("samsum", "samsum", "Samsung/samsum", "samsum", "train", "3f1f50730054c00d72523bf4f7562819b6371ada",
              "samsum/train-*.parquet", ("dialogue", "summary"), None),
    # The hub's automatic parquet conversion of GEM's WebNLG, config en.
    HubSource("webnlg", "GEM/web_nlg (en)", "GEM/web_nlg", "en", "train", "refs/convert/parquet",
              "en/train/*.parquet", ("input", "target"), None),
)
# Historical (script) names -> the source fedrouter loads instead, for the hub source's messages.
SCRIPT_REPLACEMENTS = {
    "glue": MULTITASK_SOURCES[0], "nyu-mll/glue": MULTITASK_SOURCES[0],
    "gigaword": MULTITASK_SOURCES[1], "Harvard/gigaword": MULTITASK_SOURCES[1],
    "samsum": MULTITASK_SOURCES[2], "Samsung/samsum": MULTITASK_SOURCES[2],
    "GEM/web_nlg": MULTITASK_SOURCES[3],
}
# task -> the commit (or mirror folder) its rows came from, this process
_LOADED_FROM: dict[str, str] = process_state.register(f"{__name__}._LOADED_FROM", {})


def multitask_sources() -> list[dict[str, Any]]:
    """The sources 'multitask' loads, one dict per task (task, historical name, repo_id, config, split,
    revision, data_files, fields, first_n), with `loaded_from`: the resolved commit or mirror folder of the
    last load in this process (None before one, or when offline and the revision is a branch name)."""
    return [{**dataclasses.asdict(s), "fields": list(s.fields), "loaded_from": _LOADED_FROM.get(s.task)}
            for s in MULTITASK_SOURCES]


def _offline_help(reason: str) -> str:
    return (
        f"cannot load the 'multitask' benchmark from the Hugging Face hub: {reason}. Either "
        f"(1) pass a local folder of JSONL/CSV/parquet files as dataset_name, e.g. "
        f"dataset_name={SAMPLE_DIR}, or set {MULTITASK_DIR_ENV}={SAMPLE_DIR} so 'multitask' loads it; "
        f"(2) set {HUB_MIRROR_ENV} to a folder holding the sources' parquet files as <repo id>/<file> "
        "(see docs/data.md); "
        "(3) use dataset_name=builtin for the small built-in data; or "
        "(4) go online once (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) to fill the Hugging Face cache."
    )


def _qqp_records(ds: Any) -> list[dict]:
    q = ds.select_columns(["question1", "question2", "label"]).to_dict()
    return [
        {"instruction": f"{q1}-{q2}", "response": "Yes" if label == 1 else "No", "task": "qqp"}
        for q1, q2, label in zip(q["question1"], q["question2"], q["label"], strict=True)
    ]


def _pair_records(task: str, source: str, target: str, stringify: bool = False) -> Callable[[Any], list[dict]]:
    def build(ds: Any) -> list[dict]:
        d = ds.select_columns([source, target]).to_dict()
        return [{"instruction": str(s) if stringify else s, "response": t, "task": task}
                for s, t in zip(d[source], d[target], strict=True)]

    return build


_BUILDERS: dict[str, Callable[[Any], list[dict]]] = {
    "qqp": _qqp_records,  # "question1-question2" -> Yes/No
    "gigaword": _pair_records("gigaword", "document", "summary"),
    "samsum": _pair_records("samsum", "dialogue", "summary"),
    "webnlg": _pair_records("webnlg", "input", "target", stringify=True),  # str(list of "s | p | o") -> text
}


def _load_source(src: HubSource, mirror: str | None) -> Any:
    import datasets

    if mirror:
        root = Path(mirror) / src.repo_id
        files = sorted(str(p) for p in root.glob(src.data_files) if p.is_file())
        if not files:
            raise DatasetError(
                f"{HUB_MIRROR_ENV}={mirror}: no files match {src.repo_id}/{src.data_files} (the mirror holds "
                f"each source's parquet files under <mirror>/<repo id>/ as in the repo at {src.revision})"
            )
        with hf.quiet_datasets():
            return datasets.load_dataset("parquet", data_files=files, split="train")
    return datasets.load_dataset(src.repo_id, data_files=src.data_files, revision=src.revision, split="train")


def _resolved_commit(src: HubSource, offline: bool) -> str | None:
    if re.fullmatch(r"[0-9a-f]{40}", src.revision):
        return src.revision
    if offline:
        return None
    try:
        import datasets
        from huggingface_hub import HfApi

        return HfApi(endpoint=datasets.config.HF_ENDPOINT).dataset_info(
            src.repo_id, revision=src.revision, timeout=10
        ).sha
    except Exception:  # recording the commit is best effort; the rows are already loaded
        return None


def _load_hub_multitask(mirror: str | None = None) -> list[dict]:
    """The paper's benchmark: QQP, Gigaword (first 30k of each shuffled train split), SAMSum, WebNLG, from
    the script-free parquet sources in MULTITASK_SOURCES (or their copies under `mirror`)."""
    if mirror and not Path(mirror).is_dir():
        raise DatasetError(f"{HUB_MIRROR_ENV} points at {mirror}, which is not a folder; unset it to use the hub")
    offline, reason = (False, "") if mirror else hf.hub_mode()
    records: list[dict] = []
    for src in MULTITASK_SOURCES:
        try:
            with hf.forced_offline(offline):
                ds = _load_source(src, mirror)
        except DatasetError:
            raise
        except Exception as e:  # hub/cache errors come as ConnectionError, FileNotFoundError, HfHubHTTPError, ...
            if hf.is_script_error(e):
                raise DatasetError(
                    f"multitask task {src.task}: {src.historical} is a loading-script dataset, which datasets>=4 "
                    f"cannot load; fedrouter loads {src.describe()} instead, but that revision answered with a "
                    f"loading script too [{type(e).__name__}: {e}]. Set {HUB_MIRROR_ENV} to a folder holding "
                    f"{src.repo_id}/{src.data_files}, or {MULTITASK_DIR_ENV} to a local copy of the benchmark"
                ) from e
            if offline:
                raise DatasetError(f"{_offline_help(reason)} [{src.task}: {type(e).__name__}: {e}]") from e
            raise DatasetError(
                f"multitask task {src.task}: could not load {src.describe()} from the Hugging Face hub: "
                f"{type(e).__name__}: {e}. If the files moved, set {HUB_MIRROR_ENV} to a folder holding "
                f"{src.repo_id}/{src.data_files}, or {MULTITASK_DIR_ENV} to a local copy of the benchmark"
            ) from e
        total = len(ds)
        if src.first_n is not None:
            ds = ds.shuffle(seed=0).select(range(min(src.first_n, total)))
        records += _BUILDERS[src.task](ds)
        if mirror:
            origin = _LOADED_FROM[src.task] = f"mirror:{Path(mirror) / src.repo_id}"
        else:
            _LOADED_FROM[src.task] = _resolved_commit(src, offline) or src.revision
            origin = f"{src.describe()}, commit {_LOADED_FROM[src.task]}"
        logger.info("multitask %s: %d of %d rows of %s (config %s, split %s) from %s", src.task, len(ds), total,
                    src.repo_id, src.config, src.split, origin)
    return records
