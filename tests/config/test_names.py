"""The "did you mean" of mistyped names (fedrouter.config.names)."""

from __future__ import annotations

from fedrouter.config.names import closest, did_you_mean

KNOWN = ["num_rounds", "num_clients", "lr", "seed", "sim_alias"]


def test_closest_finds_a_typo_and_nothing_for_a_stranger():
    assert closest("num_round", KNOWN) == "num_rounds"
    assert closest("num_client", KNOWN) == "num_clients"
    assert closest("http_proxy", KNOWN) is None
    assert closest("seeds", KNOWN, cutoff=0.95) is None


def test_did_you_mean_for_one_and_for_several():
    assert did_you_mean(["num_round"], KNOWN) == " (did you mean num_rounds?)"
    assert did_you_mean(["num_round", "sim_alas", "zzz"], KNOWN) == (
        " (did you mean num_rounds for num_round, sim_alias for sim_alas?)")
    assert did_you_mean(["zzz"], KNOWN) == ""
