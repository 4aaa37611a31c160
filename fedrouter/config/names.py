"""Suggestions for mistyped names: the "did you mean" of an unknown setting or launcher variable."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name most like `name` (difflib's similarity ratio, at least `cutoff`), or None."""
    found = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(names: Iterable[str], known: Iterable[str]) -> str:
    """' (did you mean num_rounds?)' for unknown `names` that resemble a known name; '' when none does.
    With several: ' (did you mean num_rounds for num_round, lr for lrr?)'."""
    names, known = list(names), sorted(set(known))
    pairs = [(name, match) for name in names if (match := closest(name, known))]
    if not pairs:
        return ""
    if len(names) == 1:
        return f" (did you mean {pairs[0][1]}?)"
    return " (did you mean " + ", ".join(f"{match} for {name}" for name, match in pairs) + "?)"
