"""fedrouter.config.registry: algorithms are registered once under each name and alias, one at most is
the proposed one (the default fed_alg), and an unknown fed_alg lists the known ones."""

from __future__ import annotations

import pytest

from fedrouter.config import registry
from fedrouter.config.registry import (
    Algorithm,
    algorithms,
    default_algorithm,
    get_algorithm,
    known_algorithms,
    register,
)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The built-in algorithms in a copy of the registry that the test may add to."""
    algorithms()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _algorithm(name: str, **kw) -> Algorithm:
    return Algorithm(name=name, server=object, client=object, **kw)


def test_every_algorithm_once_and_every_name_known():
    algs = algorithms()
    assert len({a.name for a in algs}) == len(algs)
    names = known_algorithms()
    assert names == sorted(names) and all(a.name in names and set(a.aliases) <= set(names) for a in algs)
    assert all(get_algorithm(alias) is a for a in algs for alias in (a.name, *a.aliases))


def test_the_default_is_the_one_proposed_algorithm():
    proposed = [a for a in algorithms() if a.proposed]
    assert len(proposed) == 1 and default_algorithm() == proposed[0].name


def test_unknown_fed_alg_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_algorithm("fedavgx")
    assert str(err.value) == f"fed_alg='fedavgx' is not known; allowed: {', '.join(known_algorithms())}"


def test_a_new_algorithm_registers_under_its_name_and_aliases(scratch_registry):
    new = register(_algorithm("scratch_alg", aliases=("scratch_alias",)))
    assert get_algorithm("scratch_alias") is new and algorithms()[-1] is new
    assert {"scratch_alg", "scratch_alias"} <= set(known_algorithms())


def test_a_taken_name_or_alias_is_refused(scratch_registry):
    taken = algorithms()[0]
    before = dict(registry._REGISTRY)
    with pytest.raises(ValueError, match=f"algorithm name '{taken.name}' is already registered"):
        register(_algorithm(taken.name))
    with pytest.raises(ValueError, match=f"algorithm name '{taken.name}' is already registered"):
        register(_algorithm("scratch_alg", aliases=(taken.name,)))
    assert registry._REGISTRY == before  # nothing half-registered


def test_a_second_proposed_algorithm_is_refused(scratch_registry):
    with pytest.raises(ValueError, match="scratch_alg: only one algorithm can be the proposed one"):
        register(_algorithm("scratch_alg", proposed=True))
    assert "scratch_alg" not in known_algorithms()
