"""Settings sections: frozen dataclasses of `setting(default, help)` fields, each with its own `check`.

The common settings are a few registered sections (data, model, LoRA, training, evaluation, run);
an algorithm's own settings are one more section of the same shape (`AlgorithmSettings`). Keys are
flat for users (`num_rounds=5`): a field's name is its setting's name, and no two sections share one.
A new section is one class and one `register_section` call; `--list-settings`, the docs table and
pyproject's `[tool.flwr.app.config]` follow from the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from fedrouter.config.run import RunConfig


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


def setting(default: Any, help: str) -> Any:  # noqa: A002 - 'help' mirrors dataclass metadata convention
    """A settings field: its default and the one-line meaning shown by --list-settings and the docs."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Section:
    """A group of settings. Subclass with `setting(...)` fields, give it a `name` and `title`, and
    override `check` to return one message per invalid value (naming the setting and what is allowed)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def check(self, run: RunConfig) -> list[str]:
        """Problems with these settings in the context of the whole run (empty = valid)."""
        return []

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls)}

    def values(self) -> dict[str, Any]:
        """This section's settings as flat key -> value (structured values as their text)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class AlgorithmSettings(Section):
    """An algorithm's own settings (PEFT's per-method config classes show the habit): subclass it
    with `setting(...)` fields, and override `check` to return one message per invalid value. Keys
    are flat in the run config (`mu=0.1`), so a subclass's field names are its settings' names."""

    name: ClassVar[str] = "algorithm"

    def check_data(self, run: RunConfig, train_sizes: list[int]) -> list[str]:
        """Problems that show only once the data is partitioned (training records per client)."""
        return []


_SECTIONS: list[type[Section]] = []


def register_section(cls: type[Section]) -> type[Section]:
    """Add a common section (usable as a class decorator). Its keys must be new, its name unique."""
    if not cls.name or any(s.name == cls.name for s in _SECTIONS):
        raise ValueError(f"section name {cls.name!r} is empty or already registered")
    taken = {k for s in _SECTIONS for k in s.keys()} | set(_ALIASES)
    clash = sorted(taken & set(cls.keys()))
    if clash:
        raise ValueError(f"section {cls.name!r}: setting(s) {clash} already belong to another section")
    _SECTIONS.append(cls)
    return cls


def unregister_section(cls: type[Section]) -> None:
    """Remove a section added by `register_section` (tests that add one clean up with this)."""
    _SECTIONS.remove(cls)


def sections() -> tuple[type[Section], ...]:
    """The common sections, in registration order (the order of --list-settings and the docs)."""
    return tuple(_SECTIONS)


# --- aliases: keys that are not settings but resolve into settings when read ----------------------

@dataclass(frozen=True)
class Alias:
    """A key accepted for compatibility and resolved into settings once, when settings are read.
    `resolve(value, own_keys)` returns the settings it implies (those among the algorithm's own keys or
    the common ones); an error is raised for an unknown value (`allowed`)."""

    name: str
    allowed: tuple[str, ...]
    resolve: Callable[[str, set[str]], dict[str, Any]]
    help: str


_ALIASES: dict[str, Alias] = {}


def register_alias(alias: Alias) -> Alias:
    if alias.name in _ALIASES or any(alias.name in s.keys() for s in _SECTIONS):
        raise ValueError(f"alias {alias.name!r} is already a setting or an alias")
    _ALIASES[alias.name] = alias
    return alias


def aliases() -> tuple[Alias, ...]:
    return tuple(_ALIASES.values())
