"""fedrouter.utils.seeding: derived seeds are pure functions of the run seed and where they are used."""

from __future__ import annotations

from fedrouter.utils.seeding import derive_seed


def test_derived_seeds_are_deterministic_31_bit_and_distinct():
    seeds = {(s, c, r): derive_seed(s, c, r) for s in range(3) for c in range(10) for r in range(10)}
    assert all(derive_seed(*key) == value for key, value in seeds.items())  # same inputs, same seed
    assert len(set(seeds.values())) == len(seeds)  # every (seed, client, round) its own stream
    assert all(0 <= v < 2**31 and isinstance(v, int) for v in seeds.values())


def test_the_order_and_number_of_parts_matter():
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert derive_seed(0, 1) != derive_seed(0, 1, 1)
    # numpy's SeedSequence ignores trailing zero words: a trailing 0 part adds nothing, so call sites
    # tell their uses apart by a nonzero tag part (e.g. sample_clients' 0x5A3), never by a trailing 0.
    assert derive_seed(0, 1) == derive_seed(0, 1, 0)
    assert derive_seed(7) != derive_seed(8)
