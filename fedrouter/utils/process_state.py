"""Every process-wide cache in one registry, with one `clear()`.

A module that keeps state across calls in its process (a memoized function, a module-level dict)
registers it here: `@cached(...)` in place of `functools.lru_cache`, `register(name, obj)` for a
container. `clear()` empties them all (a test starting from a cold process, a benchmark timing cold
work); `clear(x, ...)` the ones given, each by its name ("<module>.<attribute>"), as the registered
object itself (the cached function, the container) or as the module that registered them.

Not registered, on purpose: the algorithm registry (`algorithms.base._REGISTRY`: filled at import,
not a cache), the per-context timing totals (`utils.timing`: context variables that a `recording()`
block sets and resets), and `models.loader.LOAD_COUNT` (how many base models this process has loaded
over its life, which tests read to prove there was one; emptying a cache does not undo a load)."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable)
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any  # the cached function or the container, as its module holds it
    reset: Callable[[], None]
    size: Callable[[], int]  # how many things it holds now (0 after reset)


_ENTRIES: dict[str, Entry] = {}


def register(name: str, obj: T, reset: Callable[[], None] | None = None, size: Callable[[], int] | None = None) -> T:
    """Register a process-wide container under `name` and return it. Its reset is `obj.clear()` and its
    size `len(obj)` unless given. Registering a name again replaces the entry (a module imported anew)."""
    _ENTRIES[name] = Entry(name, obj, reset or obj.clear, size or (lambda: len(obj)))
    return obj


def cached(maxsize: int | None = 128) -> Callable[[F], F]:
    """`functools.lru_cache(maxsize)`, registered under the function's "<module>.<qualname>"."""

    def wrap(fn: F) -> F:
        memo = functools.lru_cache(maxsize=maxsize)(fn)
        register(f"{fn.__module__}.{fn.__qualname__}", memo, memo.cache_clear, lambda: memo.cache_info().currsize)
        return memo  # type: ignore[return-value]

    return wrap


def names(under: str = "") -> list[str]:
    """The registered names, sorted; with `under` (a module name), only that module's and its submodules'."""
    return sorted(n for n in _ENTRIES if not under or n.startswith(under + "."))


def entry_of(obj: Any) -> Entry | None:
    """The entry that registered this very object (a module's cached function or container), if any."""
    return next((e for e in _ENTRIES.values() if e.obj is obj), None)


def sizes() -> dict[str, int]:
    """Name -> how many things it holds now."""
    return {n: _ENTRIES[n].size() for n in names()}


def clear(*which: str | Any) -> None:
    """Empty every registered cache, or only the ones given: each by its name, as the registered object
    itself, or as a module (every cache that module and its submodules registered)."""
    entries: list[Entry] = []
    unknown = []
    for w in which:
        if isinstance(w, types.ModuleType):
            entries += [_ENTRIES[n] for n in names(under=w.__name__)]
        elif (e := _ENTRIES.get(w) if isinstance(w, str) else entry_of(w)) is not None:
            entries.append(e)
        else:
            unknown.append(str(getattr(w, "__qualname__", w)))
    if unknown:
        raise KeyError(f"not a registered process-wide cache: {', '.join(unknown)}; registered: {', '.join(names())}")
    for e in entries if which else [_ENTRIES[n] for n in names()]:
        e.reset()
