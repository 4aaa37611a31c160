"""The algorithm registry: each algorithm is one entry (its two halves, its settings section, hooks).

It lives with the settings because reading settings needs it (`fed_alg` picks the settings class).
Algorithms are plugins: an algorithm module calls `register(Algorithm(...))` when imported, and the
built-in ones (the package `BUILTIN_PLUGINS` names) are imported by name the first time the registry
is asked, the way entry points load plugins — so this module never imports the code above it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fedrouter.config.section import AlgorithmSettings

if TYPE_CHECKING:
    from flwr.app import RecordDict

    from fedrouter.algorithms.base import ClientAlgorithm, Routing, ServerAlgorithm, SyntheticClient

BUILTIN_PLUGINS = ("fedrouter.algorithms",)  # packages whose import registers the built-in algorithms


@dataclass(frozen=True)
class Algorithm:
    """A registry entry: the algorithm's two halves, its own settings class, and optional hooks that
    the report and the benchmark call instead of naming an algorithm."""

    name: str
    server: type[ServerAlgorithm]
    client: type[ClientAlgorithm]
    settings: type[AlgorithmSettings] = AlgorithmSettings
    aliases: tuple[str, ...] = ()
    summary: str = ""
    # The method the report compares every other one against (the paper's proposal); one at most.
    proposed: bool = False
    # Report hook: extra figures from this method's run folders, `(runs, out_dir) -> paths written`,
    # where runs are (scenario, seed, run folder) of every completed run of the method.
    report_plots: Callable[[list[tuple[str, int, Path]], Path], list[Path]] | None = None
    # Report hook: extra markdown sections from the same runs, `runs -> lines` (appended to results.md).
    report_sections: Callable[[list[tuple[str, int, Path]]], list[str]] | None = None
    # Benchmark hook: the reply this method's client half sends to a "setup" or "train" message of its
    # server had its local work produced the given values, `(kind, message, SyntheticClient) -> reply`
    # (the server at 1,000 clients).
    synthetic_reply: Callable[[str, RecordDict, SyntheticClient], RecordDict] | None = None
    # Benchmark hook, for methods that route test samples to adapters: their routing.
    routing: Routing | None = None


_REGISTRY: dict[str, Algorithm] = {}
_loaded = False


def register(algorithm: Algorithm) -> Algorithm:
    for key in (algorithm.name, *algorithm.aliases):
        if key in _REGISTRY:
            raise ValueError(f"algorithm name {key!r} is already registered")
    if algorithm.proposed and any(a.proposed for a in _REGISTRY.values()):
        raise ValueError(f"{algorithm.name}: only one algorithm can be the proposed one")
    for key in (algorithm.name, *algorithm.aliases):
        _REGISTRY[key] = algorithm
    return algorithm


def _load_plugins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for package in BUILTIN_PLUGINS:
            importlib.import_module(package)


def algorithms() -> list[Algorithm]:
    """Every registered algorithm once, in registration order (the report's column order)."""
    _load_plugins()
    return list(dict.fromkeys(_REGISTRY.values()))


def known_algorithms() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(f"fed_alg={name!r} is not known; allowed: {', '.join(known_algorithms())}")
    return _REGISTRY[name]


def default_algorithm() -> str:
    """The algorithm a run uses when fed_alg is not set: the proposed one."""
    return next(a.name for a in algorithms() if a.proposed)
