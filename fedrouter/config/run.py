"""RunConfig: every setting of a run, as the registered sections plus the algorithm's own section,
built once from a flat key=value mapping. Settings read flat (`cfg.num_rounds`) or by section
(`cfg.training.num_rounds`); the flat keys are what users write."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from fedrouter.config.names import did_you_mean
from fedrouter.config.registry import algorithms, default_algorithm, get_algorithm, known_algorithms
from fedrouter.config.section import AlgorithmSettings, ConfigError, Section, aliases, sections
from fedrouter.config.tables import flat_defaults
from fedrouter.config.values import coerce, type_error


def settings_class(fed_alg: str) -> type[AlgorithmSettings]:
    try:
        return get_algorithm(fed_alg).settings
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _owner_of_key() -> dict[str, type[Section]]:
    return {key: sec for sec in sections() for key in sec.keys()}


def _build(cls: type[Section], values: dict[str, Any]) -> Section:
    """A section from typed or text values (structured values parsed here, once)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return cls(**{k: coerce(v, type(fields[k].default)) for k, v in values.items()})


class RunConfig:
    """Every setting of a run. Keys match the launcher variables and `[tool.flwr.app.config]`.

    `RunConfig(num_rounds=3)` takes typed flat values (tests, code); `RunConfig.from_mapping` reads
    text from the command line, presets and flwr's run config, and reports every problem at once."""

    __slots__ = ("_sections", "_owner", "alg")

    def __init__(self, alg: AlgorithmSettings | None = None, **flat: Any):
        owner = _owner_of_key()
        unknown = sorted(set(flat) - set(owner))
        if unknown:
            raise TypeError(f"RunConfig got unknown setting(s) {unknown}")
        built = {sec.name: _build(sec, {k: v for k, v in flat.items() if owner[k] is sec}) for sec in sections()}
        run = built["run"]
        if not run.fed_alg:
            run = dataclasses.replace(run, fed_alg=default_algorithm())
        if not run.sim_alias:
            run = dataclasses.replace(run, sim_alias=f"{run.fed_alg}_{built['data'].split_strategy}")
        built["run"] = run
        object.__setattr__(self, "_sections", built)
        object.__setattr__(self, "_owner", {key: sec for sec in built.values() for key in type(sec).keys()})
        object.__setattr__(self, "alg", alg if alg is not None else settings_class(run.fed_alg)())

    # --- access ------------------------------------------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        secs = object.__getattribute__(self, "_sections")
        if key in secs:
            return secs[key]
        owner = object.__getattribute__(self, "_owner")
        if key in owner:
            return getattr(owner[key], key)
        raise AttributeError(f"RunConfig has no setting or section {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to setting {key!r}: use cfg.replace({key}=...)")

    def section_list(self) -> list[Section]:
        """The common sections, then the algorithm's own."""
        return [*self._sections.values(), self.alg]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.section_list() == other.section_list()

    def __hash__(self) -> int:
        return hash(tuple(self.section_list()))

    def __repr__(self) -> str:
        return f"RunConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __reduce__(self):
        return _from_flat, (self.to_dict(),)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: dict[str, Any], strict: bool = True) -> RunConfig:
        """Build from flat key=value settings (strings or typed values), read once: the common ones go
        to their sections, fed_alg's own ones to its settings class, aliases (`evaluation_mode`) are
        resolved. Unknown keys, unparsable values and another algorithm's setting given a non-default
        value are errors; another algorithm's keys at their defaults (as `flwr run` passes every key
        of pyproject's config) are ignored; `strict=False` ignores them whatever their value (reading
        run folders written before each algorithm owned its settings)."""
        values = {k.replace("-", "_"): v for k, v in values.items()}
        common = _owner_of_key()
        fed_alg = str(values.get("fed_alg") or "") or default_algorithm()
        values["fed_alg"] = fed_alg
        own_cls = settings_class(fed_alg)  # raises ConfigError naming the known algorithms
        # A preset's method table, as `flwr run --run-config` flattens it: `<method>.<setting>` applies when
        # <method> is the run's fed_alg (over a flat key of the same name), and is ignored otherwise.
        for key in [k for k in values if "." in k]:
            method, name = key.split(".", 1)
            if method not in known_algorithms():
                raise ConfigError(f"unknown setting {key!r}: a dotted key is a method's own setting "
                                  f"(<method>.<setting>, method one of {', '.join(known_algorithms())})")
            value = values.pop(key)
            if get_algorithm(method).name == get_algorithm(fed_alg).name:
                values[name] = value
        own = {f.name: f for f in dataclasses.fields(own_cls)}
        problems = _resolve_aliases(values, set(common) | set(own), strict)
        foreign = _other_algorithms_settings(own_cls)
        unknown = sorted(k for k in values if k not in common and k not in own and k not in foreign)
        if unknown:
            known = [*common, *own, *(a.name for a in aliases())]
            raise ConfigError(f"unknown setting(s) {unknown}{did_you_mean(unknown, known)}"
                              + f"; known settings: {sorted(common)}; fed_alg={fed_alg} also has: {sorted(own) or 'none'}")
        flat: dict[str, Any] = {}
        alg_kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if key in common or key in own:
                f = own.get(key) or next(f for f in dataclasses.fields(common[key]) if f.name == key)
                target = flat if key in common else alg_kwargs
                try:
                    target[key] = coerce(raw, type(f.default))
                except ValueError as exc:
                    problems.append(type_error(key, raw, type(f.default), exc))
                continue
            owner, default = foreign[key]  # another algorithm's setting: fine at its default
            try:
                same = coerce(raw, type(default)) == default
            except ValueError:
                same = False
            if not same and strict:
                problems.append(f"{key}={raw!r} is a setting of fed_alg={owner}; fed_alg={fed_alg} has no "
                                f"setting {key!r} (its settings: {', '.join(sorted(own)) or 'none'})")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(alg=own_cls(**alg_kwargs), **flat)

    def to_dict(self) -> dict[str, Any]:
        """Flat: the common settings and the algorithm's own (what config.json records), structured
        values as their text."""
        out: dict[str, Any] = {}
        for sec in self.section_list():
            out.update({k: str(v) if isinstance(v, str) else v for k, v in sec.values().items()})
        return out

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some flat settings changed (common or the algorithm's own)."""
        if "fed_alg" in changes and changes["fed_alg"] != self.fed_alg:  # the old algorithm's settings go
            common = {k: v for k, v in self.to_dict().items() if k not in self.alg.defaults()}
            return RunConfig.from_mapping({**common, **changes})
        own = set(self.alg.keys())
        alg_changes = {k: changes.pop(k) for k in list(changes) if k in own}
        alg = _build(type(self.alg), {**self.alg.values(), **alg_changes}) if alg_changes else self.alg
        flat = {k: v for k, v in self.to_dict().items() if k not in own}
        return RunConfig(alg=alg, **{**flat, **changes})

    # --- derived values ----------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / f"{self.sim_alias}_seed{self.seed}"

    @property
    def eval_rounds(self) -> tuple[int, ...]:
        """Rounds with evaluation; the last round is always one so every run ends with a score."""
        return tuple(sorted({*self.eval_round.rounds, self.num_rounds}))

    @property
    def target_modules(self) -> list[str] | None:
        return list(self.lora_target_modules.names) or None

    def fault_for(self, client_id: int, rnd: int) -> str | None:
        """'raise', 'nan' or 'hang' if inject_fault targets this client's training in this round."""
        return self.inject_fault.mode_for(client_id, rnd)

    def lr_at(self, rnd: int) -> float:
        """Cosine schedule over rounds (rnd is 1-based), constant within a round."""
        progress = (rnd - 1) / max(1, self.num_rounds - 1)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * progress))

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _from_flat(values: dict[str, Any]) -> RunConfig:
    return RunConfig.from_mapping(values, strict=False)


def _resolve_aliases(values: dict[str, Any], keys: set[str], strict: bool) -> list[str]:
    """Replace each alias key in `values` by the settings it implies. An implied setting also given
    at a non-default value that differs is a conflict; at its default (flwr run passes every key)
    the alias decides."""
    problems = []
    defaults = flat_defaults()
    for alias in aliases():
        value = str(values.pop(alias.name, "") or "")
        if not value:
            continue
        if value not in alias.allowed:
            raise ConfigError(f"{alias.name}={value!r} is not known; allowed: {', '.join(alias.allowed)}")
        for key, implied in alias.resolve(value, keys).items():
            given = values.get(key)
            if given is not None and str(given) != str(implied) and strict \
                    and str(given) != str(defaults.get(key)):
                problems.append(f"{alias.name}={value!r} means {key}={implied!r}, but {key}={given!r} is set too")
            values[key] = implied
    return problems


def _other_algorithms_settings(own: type[AlgorithmSettings]) -> dict[str, tuple[str, Any]]:
    """key -> (owning algorithm, default) for the settings of every other registered algorithm."""
    out: dict[str, tuple[str, Any]] = {}
    for alg in algorithms():
        if alg.settings is not own:
            for key, default in alg.settings.defaults().items():
                out.setdefault(key, (alg.name, default))
    return out
