"""What the sources that read through Hugging Face `datasets` share: quiet progress bars, whether to use only
the local cache (offline mode, an unreachable hub), and recognising a loading-script dataset."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

SCRIPT_ERROR = "Dataset scripts are no longer supported"  # datasets>=4 on a repo that holds a loading script
_TRUE = {"1", "ON", "YES", "TRUE"}


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Hide datasets' per-file progress bars while loading, restoring the caller's setting afterwards."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def offline_requested() -> bool:
    return any(
        os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _proxy_configured() -> bool:
    # Behind a proxy a direct TCP probe says nothing about reachability, so leave it to datasets.
    return any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
    )


def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    # datasets retries an unreachable hub for ~25 s per file; a short TCP probe lets us go offline at once.
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_mode() -> tuple[bool, str]:
    """(offline, why): whether to use only the local cache, and the reason a failed load gives for it."""
    import datasets

    if offline_requested() or bool(datasets.config.HF_HUB_OFFLINE):
        return True, "offline mode is on (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) and the data is not in the cache"
    if not _proxy_configured() and not _hub_reachable(datasets.config.HF_ENDPOINT):
        return True, f"{datasets.config.HF_ENDPOINT} is unreachable and the data is not in the cache"
    return False, ""


@contextlib.contextmanager
def forced_offline(active: bool) -> Iterator[None]:
    """Make datasets/huggingface_hub use only the local cache. They read HF_HUB_OFFLINE once at import,
    so an env var set later (or an unreachable network) would otherwise still trigger slow retries."""
    if not active:
        yield
        return
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    saved = (ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    ds_config.HF_HUB_OFFLINE = ds_config.HF_DATASETS_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        ds_config.HF_HUB_OFFLINE, ds_config.HF_DATASETS_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def is_script_error(exc: BaseException) -> bool:
    """datasets>=4 refusing a repo that holds a loading script (RuntimeError, or wrapped in another error)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if SCRIPT_ERROR in str(e):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False
