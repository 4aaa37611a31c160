"""Turn a `dataset_name` into a record pool. Each kind of data is a source (base.DataSource) in its own module,
registered below; `load_pool` asks them which one takes the name, and messages list them.

Adding a source: a module with a DataSource subclass, and one `register(...)` line here (docs/data.md)."""

from fedrouter.data.sources.base import (
    OWN_COLUMNS,
    REQUIRED_COLUMNS,
    DatasetError,
    DataSource,
    SourceOptions,
    allowed,
    register,
    registered,
    source_for,
    unregister,
)
from fedrouter.data.sources.builtin import BUILTIN_DEFAULT_PER_TASK, BuiltinSource
from fedrouter.data.sources.hub import HubDatasetSource, hub_dataset_problem, is_hub_id
from fedrouter.data.sources.local import LOCAL_SUFFIXES, SAVED_MARKERS, SPLIT_VALUES, LocalSource
from fedrouter.data.sources.multitask import (
    HUB_FIRST_N,
    HUB_MIRROR_ENV,
    MULTITASK_DIR_ENV,
    MULTITASK_SOURCES,
    HubSource,
    MultitaskSource,
    multitask_sources,
)
from fedrouter.data.sources.pool import clean_records, clear_pool_cache, load_pool

# The sources, in the order messages list them; which one takes a name is decided by their claim_order.
register(BuiltinSource())
register(MultitaskSource())
register(LocalSource())
register(HubDatasetSource())

__all__ = [
    "BUILTIN_DEFAULT_PER_TASK", "HUB_FIRST_N", "HUB_MIRROR_ENV", "LOCAL_SUFFIXES", "MULTITASK_DIR_ENV",
    "MULTITASK_SOURCES", "OWN_COLUMNS", "REQUIRED_COLUMNS", "SAVED_MARKERS", "SPLIT_VALUES", "BuiltinSource",
    "DataSource", "DatasetError", "HubDatasetSource", "HubSource", "LocalSource", "MultitaskSource",
    "SourceOptions", "allowed", "clean_records", "clear_pool_cache", "hub_dataset_problem", "is_hub_id",
    "load_pool", "multitask_sources", "register", "registered", "source_for", "unregister",
]
