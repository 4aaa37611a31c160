"""Logging setup: one format for the server, the clients (Ray workers) and the run's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = __name__.split(".")[0]  # the package's root logger; every module logs below it

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_process_logging(level: int = logging.INFO) -> None:
    """Make 'fedrouter.*' log lines visible in this process (idempotent)."""
    root = logging.getLogger(ROOT)
    root.setLevel(level)
    # bitsandbytes, on CPUs with AVX512-BF16, warns at import that it cannot fetch an optional 4-bit
    # kernel from the hub ("pip install kernels"). loader.py switches that kernel off anyway (it has
    # no backward pass), so the line is noise in every worker's log.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    if not any(getattr(h, "_fedrouter", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        handler._fedrouter = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


def add_file_log(path: Path) -> logging.Handler:
    """Also write the 'fedrouter' and 'flwr' loggers into the run folder's log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S"))
    for name in (ROOT, "flwr"):
        logging.getLogger(name).addHandler(handler)
    return handler


def remove_file_log(handler: logging.Handler) -> None:
    for name in (ROOT, "flwr"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()
