"""fedrouter.config.section: a section's keys, defaults and values; register_section and register_alias
refuse a name or a key that is taken (the generated listings are in tests/config/test_tables.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fedrouter.config import algorithms
from fedrouter.config.common import DataSettings, TrainingSettings
from fedrouter.config.section import (
    Alias,
    Section,
    aliases,
    register_alias,
    register_section,
    sections,
    setting,
    unregister_section,
)


@dataclass(frozen=True)
class Extra(Section):
    name = "extra_test"
    title = "A section added by a test"
    extra_level: int = setting(3, "a level")
    extra_label: str = setting("x", "a label")


def test_keys_defaults_and_values_of_a_section():
    assert Extra.keys() == ("extra_level", "extra_label")
    assert Extra.defaults() == {"extra_level": 3, "extra_label": "x"}
    assert Extra(extra_level=5).values() == {"extra_level": 5, "extra_label": "x"}
    assert Extra().check(None) == []  # a section without its own check accepts every value


def test_the_common_sections_in_registration_order_with_disjoint_keys():
    names = [s.name for s in sections()]
    assert names[:6] == ["data", "model", "lora", "training", "evaluation", "run"]
    keys = [k for s in sections() for k in s.keys()]
    assert len(keys) == len(set(keys)) and "num_rounds" in TrainingSettings.keys()


def test_a_new_section_registers_once_and_unregisters():
    register_section(Extra)
    try:
        assert sections()[-1] is Extra
        with pytest.raises(ValueError, match="section name 'extra_test' is empty or already registered"):
            register_section(Extra)
    finally:
        unregister_section(Extra)
    assert Extra not in sections()


def test_a_section_without_a_name_or_with_a_taken_name_is_refused():
    @dataclass(frozen=True)
    class Nameless(Section):
        nameless_key: int = setting(0, "")

    @dataclass(frozen=True)
    class SecondData(Section):
        name = DataSettings.name
        other_key: int = setting(0, "")

    for cls in (Nameless, SecondData):
        with pytest.raises(ValueError, match="is empty or already registered"):
            register_section(cls)
    assert Nameless not in sections() and SecondData not in sections()


def test_a_key_another_section_or_an_alias_owns_is_refused():
    algorithms()  # the built-in algorithms register their aliases (evaluation_mode)

    @dataclass(frozen=True)
    class Rounds(Section):
        name = "rounds_test"
        num_rounds: int = setting(3, "")
        lr: float = setting(0.1, "")

    @dataclass(frozen=True)
    class Mode(Section):
        name = "mode_test"
        evaluation_mode: str = setting("", "")

    with pytest.raises(ValueError, match=r"section 'rounds_test': setting\(s\) \['lr', 'num_rounds'\] already belong"):
        register_section(Rounds)
    with pytest.raises(ValueError, match=r"section 'mode_test': setting\(s\) \['evaluation_mode'\] already belong"):
        register_section(Mode)
    assert Rounds not in sections() and Mode not in sections()


def test_an_alias_may_not_take_a_settings_or_another_aliases_name():
    algorithms()
    assert "evaluation_mode" in [a.name for a in aliases()]
    before = aliases()
    for name in ("evaluation_mode", "num_rounds"):
        with pytest.raises(ValueError, match=f"alias '{name}' is already a setting or an alias"):
            register_alias(Alias(name, ("x",), lambda value, own: {}, "a test alias"))
    assert aliases() == before
