"""Wall-clock seconds per pipeline phase (load, embed, cluster, train, route, generate, rouge = scoring, ...).

The shared functions that do the work are marked with `@timed("phase")`; a `recording()` block (one
client message, one server round) collects what ran inside it. Outside a recording, timing is a no-op."""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_TOTALS: ContextVar[dict[str, float] | None] = ContextVar("fedrouter_timing_totals", default=None)
_IN_PHASE: ContextVar[bool] = ContextVar("fedrouter_timing_in_phase", default=False)


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Yield a dict that fills with {phase: seconds} for every phase that runs inside the block."""
    totals: dict[str, float] = defaultdict(float)
    token = _TOTALS.set(totals)
    try:
        yield totals
    finally:
        _TOTALS.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the block's wall time to `name`. Only the outermost phase counts (k-means inside the
    server's global clustering is global clustering), so the phases of a block never overlap and
    their sum is the block's compute time."""
    totals = _TOTALS.get()
    if totals is None or _IN_PHASE.get():
        yield
        return
    token = _IN_PHASE.set(True)
    start = time.perf_counter()
    try:
        yield
    finally:
        totals[name] += time.perf_counter() - start
        _IN_PHASE.reset(token)


def timed(name: str) -> Callable[[F], F]:
    """Decorator form of `phase`."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with phase(name):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
