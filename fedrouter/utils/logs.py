"""Logging setup: one format for the server, the clients (Ray workers) and the run's log file."""

from __future__ import annotations

import logging
import sys
import warnings
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
    silence_known_noise()
    if not any(getattr(h, "_fedrouter", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        handler._fedrouter = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False


# Python warnings of the pinned libraries that say nothing to a user of this project, as
# (message regex, category), each with why it is silenced rather than fixed.
KNOWN_WARNINGS = [
    # torch 2.13's own torch.utils.mkldnn (imported by torch._inductor, which transformers loads) defines
    # its classes with the deprecated torch.jit.script_method; nothing here uses TorchScript.
    (r"`torch\.jit\.script_method` is deprecated", DeprecationWarning),
    # peft 0.21's PeftModel reads transformers 5's deprecated is_gradient_checkpointing alias.
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
    # Ray's tip about a future default: today Ray hides the GPUs from a worker given num_gpus=0, which is
    # what CPU clients rely on (gpu=false, client_resources_gpus=0); the project keeps that behaviour.
    (r"Tip: In future versions of Ray, Ray will no longer override accelerator", FutureWarning),
]


class _FlowerNoise(logging.Filter):
    """Drops two of Flower's log lines: the deprecation of `run_simulation` (the in-process simulation
    that python -m fedrouter.runtime.simulate runs on purpose; docs/deployment.md says why), and
    "Manually terminating ClientAppActor", logged by every worker when a simulation ends normally."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "Manually terminating %s":
            return False
        return not (str(record.msg).startswith("DEPRECATED FEATURE") and args
                    and str(args[0]).startswith("The `run_simulation` function is deprecated"))


def silence_known_noise() -> None:
    """Ignore KNOWN_WARNINGS and filter Flower's noise lines in this process (idempotent). Flower's
    simulation turns every DeprecationWarning on ("once") when it is imported, by a filter put in
    front of the others; each call puts these filters in front again, and every entry point (the
    launcher, the ServerApp, each ClientApp message) calls it after Flower is loaded."""
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    flwr = logging.getLogger("flwr")
    if not any(isinstance(f, _FlowerNoise) for f in flwr.filters):
        flwr.addFilter(_FlowerNoise())


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
