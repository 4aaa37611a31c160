"""fedrouter.config.values: structured values parsed once, their errors, their text kept as written;
reading scalars from strings (`coerce`) and the message for a value of the wrong type."""

from __future__ import annotations

import copy
import pickle

import pytest

from fedrouter.config.values import (
    FaultList,
    IntOrAuto,
    IntRange,
    NameList,
    RoundList,
    TaskSelection,
    coerce,
    type_error,
)


def test_each_structured_value_parses_its_text_and_keeps_it_as_written():
    assert (IntRange("2, 8").lo, IntRange("2, 8").hi) == (2, 8) and IntRange("2, 8") == "2, 8"
    assert IntOrAuto("auto").auto and IntOrAuto("3").value == 3 and not IntOrAuto("3").auto
    assert RoundList("0, 5,10").rounds == (0, 5, 10) and RoundList("").rounds == ()
    assert RoundList("10,5").rounds == (10, 5)  # in the order written
    assert NameList(" q_proj ,, v_proj ").names == ("q_proj", "v_proj") and NameList("").names == ()
    assert TaskSelection("auto").auto and TaskSelection("qqp,samsum").names == ("qqp", "samsum")
    assert TaskSelection("").names == () and not TaskSelection("").auto
    faults = FaultList("1:2:nan, 0:1, 3:4:hang")
    assert faults.entries == ((1, 2, "nan"), (0, 1, "raise"), (3, 4, "hang"))
    assert faults.mode_for(0, 1) == "raise" and faults.mode_for(1, 2) == "nan" and faults.mode_for(1, 1) is None
    assert str(faults) == "1:2:nan, 0:1, 3:4:hang" and isinstance(faults, str)


@pytest.mark.parametrize("kind, text", [
    (IntRange, "2-8"), (IntRange, "2"), (IntRange, "2,8,9"), (IntOrAuto, "many"), (IntOrAuto, "1.5"),
    (RoundList, "1,x"), (FaultList, "1"), (FaultList, "1:2:freeze"), (FaultList, "1:2:nan:x"), (FaultList, "a:1"),
])
def test_malformed_text_names_what_is_expected(kind, text):
    with pytest.raises(ValueError) as err:
        kind(text)
    assert str(err.value) == f"must be {kind.expected}"


def test_range_and_count_problems():
    assert IntRange("2,6").problems("k_range") == []
    assert IntRange("1,6").problems("k_range") == ["k_range='1,6' must be 'min,max' with 2 <= min <= max"]
    assert IntRange("6,2").problems("k_range", min_k=1, why=" (why)") == [
        "k_range='6,2' must be 'min,max' with 1 <= min <= max (why)"]
    assert IntOrAuto("auto").problems("n") == [] and IntOrAuto("1").problems("n") == []
    assert IntOrAuto("0").problems("n_clusters") == ["n_clusters=0 must be >= 1 (or 'auto')"]


@pytest.mark.parametrize("value", [IntRange("2,8"), IntOrAuto("auto"), RoundList("0,5"), NameList("a, b"),
                                   TaskSelection("auto"), FaultList("1:2:nan")])
def test_copies_and_pickles_are_the_same_value_parsed_again(value):
    for other in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert type(other) is type(value) and other == value and vars(other) == vars(value)


def test_coerce_reads_strings_as_the_settings_type():
    assert [coerce(x, bool) for x in ("1", "True", "yes", "on", "0", "false", "no", "off", "", True)] == [
        True, True, True, True, False, False, False, False, False, True]
    assert coerce("3", int) == 3 and coerce("3.0", int) == 3 and coerce(4, int) == 4 and coerce("1e-3", float) == 1e-3
    assert coerce(5, str) == "5"
    fault = FaultList("1:2")
    assert coerce(fault, FaultList) is fault  # already parsed: kept
    assert type(coerce("1,3", RoundList)) is RoundList and coerce("1,3", RoundList).rounds == (1, 3)
    for raw, kind in (("maybe", bool), ("3.5", int), (True, int), ("x", float), ("1-3", RoundList)):
        with pytest.raises(ValueError):
            coerce(raw, kind)


def test_type_error_messages():
    assert type_error("num_rounds", "x", int, ValueError("x")) == "num_rounds='x': expected int"
    with pytest.raises(ValueError) as err:
        IntRange("2-6")
    assert type_error("k_range", "2-6", IntRange, err.value) == "k_range='2-6' must be 'min,max', e.g. '2,8'"
