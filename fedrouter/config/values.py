"""Setting values: scalars read from strings, and structured values parsed once when settings are read.

A structured value is a `str` subclass: it keeps the text as written (so config.json, pyproject and
`flwr run` see the same flat string as ever) and carries its parsed parts as attributes. A malformed
text raises ValueError with the message shown to the user."""

from __future__ import annotations

from typing import Any


class Structured(str):
    """Base of the structured values; `expected` describes the accepted text for error messages."""

    expected = "a value"

    def __new__(cls, text: Any = ""):
        self = super().__new__(cls, str(text))
        self._parse(str(text))
        return self

    def _parse(self, text: str) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __reduce__(self):  # copies and pickles re-parse the text
        return type(self), (str(self),)


def _items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


class IntRange(Structured):
    """'min,max': the k an automatic choice of the number of clusters tries."""

    expected = "'min,max', e.g. '2,8'"

    def _parse(self, text: str) -> None:
        try:
            lo, hi = (int(x) for x in text.split(","))
        except ValueError:
            raise ValueError(f"must be {self.expected}") from None
        self.lo, self.hi = lo, hi

    def problems(self, name: str, min_k: int = 2, why: str = "") -> list[str]:
        """The range must start at `min_k` or above (`why`: the reason, appended to the message)."""
        return [] if min_k <= self.lo <= self.hi else [f"{name}={str(self)!r} must be 'min,max' with {min_k} <= min <= max{why}"]


class IntOrAuto(Structured):
    """A positive count, or 'auto' (the algorithm chooses it)."""

    expected = "a positive integer or 'auto'"

    def _parse(self, text: str) -> None:
        self.auto = text == "auto"
        if not self.auto:
            try:
                self.value = int(text)
            except ValueError:
                raise ValueError(f"must be {self.expected}") from None

    def problems(self, name: str) -> list[str]:
        return [] if self.auto or self.value >= 1 else [f"{name}={self.value} must be >= 1 (or 'auto')"]


class RoundList(Structured):
    """Comma-separated round numbers ('0,5,10'); `rounds` in the order written."""

    expected = "comma-separated round numbers, e.g. '3,10,25'"

    def _parse(self, text: str) -> None:
        try:
            self.rounds = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError:
            raise ValueError(f"must be {self.expected}") from None


class NameList(Structured):
    """Comma-separated names; empty = none. `names` in the order written."""

    expected = "comma-separated names"

    def _parse(self, text: str) -> None:
        self.names = tuple(_items(text))


class TaskSelection(NameList):
    """Task names, or 'auto' (the data decides), or empty (none)."""

    expected = "comma-separated task names, auto, or empty"

    def _parse(self, text: str) -> None:
        super()._parse(text)
        self.auto = text.strip() == "auto"


FAULT_MODES = ("raise", "nan", "hang")


class FaultList(Structured):
    """inject_fault: 'client:round[:nan|:hang]' entries; `entries` = ((client, round, mode), ...)."""

    expected = "'client:round[:nan|:hang]' entries, comma-separated"

    def _parse(self, text: str) -> None:
        entries = []
        for entry in _items(text):
            parts = entry.split(":")
            mode = parts[2] if len(parts) > 2 else "raise"
            try:
                if mode not in FAULT_MODES or len(parts) > 3:
                    raise ValueError(entry)
                entries.append((int(parts[0]), int(parts[1]), mode))
            except (ValueError, IndexError):
                raise ValueError(f"must be {self.expected}") from None
        self.entries = tuple(entries)

    def mode_for(self, client_id: int, rnd: int) -> str | None:
        return next((mode for c, r, mode in self.entries if (c, r) == (client_id, rnd)), None)


def coerce(raw: Any, kind: type) -> Any:
    """`raw` (a string from the command line, TOML or flwr's run config, or a typed value) as `kind`,
    the type of the setting's default; ValueError when it cannot be read as one."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(raw)
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError(raw)
        value = float(raw)
        if value != int(value):
            raise ValueError(raw)
        return int(value)
    if kind is float:
        return float(raw)
    if issubclass(kind, Structured):
        return raw if type(raw) is kind else kind(str(raw))
    return str(raw)


def type_error(key: str, raw: Any, kind: type, exc: ValueError) -> str:
    """The message for a value that cannot be read as its setting's type."""
    if issubclass(kind, Structured):
        return f"{key}={str(raw)!r} {exc}"
    return f"{key}={raw!r}: expected {kind.__name__}"
