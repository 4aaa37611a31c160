"""Provenance of a run: the code's git commit, the versions of the packages it ran with, and the machine."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

# Distributions whose versions can change a run's numbers (importlib.metadata names).
PACKAGES = ("torch", "transformers", "peft", "accelerate", "flwr", "datasets", "tokenizers", "bitsandbytes",
            "scikit-learn", "numpy", "sentence-transformers", "rouge-score", "sacrebleu")
COMMIT_CHARS = 12  # how many characters of a commit hash reports show
# What `differences` compares: thread count, CPU count and platform string are recorded, not compared.
COMPARED = ("commit", "dirty", "python", *PACKAGES, "cpu", "gpu")

log = logging.getLogger("fedrouter.provenance")


def collect() -> dict[str, Any]:
    """This process's provenance. Never fails: what cannot be found is None (no git, not a git
    checkout, a package not installed), and `gpu` is [] without a usable GPU."""
    import fedrouter

    commit, dirty = git_state(Path(fedrouter.__file__).resolve().parent)
    return {
        "commit": commit,
        "dirty": dirty,
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "torch_threads": _torch_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_models(),
        "platform": platform.platform(),
    }


def git_state(package_dir: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the working tree has uncommitted or untracked changes) of the git
    checkout that tracks the package `package_dir`; (None, None) when there is none (an installed
    copy, even one inside some repository's ignored venv) or git is missing."""
    package_dir = Path(package_dir)
    try:
        tracked = _git(package_dir.parent, "ls-files", "--error-unmatch", f"{package_dir.name}/__init__.py")
        commit = _git(package_dir.parent, "rev-parse", "HEAD")
        status = _git(package_dir.parent, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None, None
    if tracked is None or not commit or status is None:
        return None, None
    return commit, bool(status)


def _git(cwd: Path, *args: str) -> str | None:
    """The command's output, None if it fails. --no-optional-locks: `status` must not refresh the
    index, which could collide with a git command someone runs in that checkout meanwhile."""
    proc = subprocess.run(["git", "--no-optional-locks", "-C", str(cwd), *args], capture_output=True, text=True,
                          timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def cpu_model() -> str | None:
    """The "model name" of /proc/cpuinfo (Linux), else platform.processor(); None if neither says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def gpu_models() -> list[str]:
    """Names of the CUDA devices torch sees; [] without torch or without a usable GPU."""
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken driver must not stop a run from starting
        log.warning("provenance: could not list the GPUs: %s", exc)
        return []


def differences(records: list[dict[str, Any]]) -> list[str]:
    """The compared keys whose values differ across `records` (collect() dicts), each as
    `key: value (n runs), other value (m runs)`, the most common value first."""
    out = []
    for key in COMPARED:
        counts = Counter(_shown(key, _value(r, key)) for r in records)
        if len(counts) > 1:
            values = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            out.append(f"{key}: " + ", ".join(f"{v} ({n} run{'s' * (n != 1)})" for v, n in values))
    return out


def _value(record: dict[str, Any], key: str) -> Any:
    return record.get("packages", {}).get(key) if key in PACKAGES else record.get(key)


def _shown(key: str, value: Any) -> str:
    if value is None or value == []:
        return "none" if key == "gpu" else "not installed" if key in PACKAGES else "unknown"
    if key == "commit":
        return value[:COMMIT_CHARS]
    if key == "dirty":
        return "uncommitted changes" if value else "clean"
    if isinstance(value, list):
        return " + ".join(map(str, value))
    return str(value)
