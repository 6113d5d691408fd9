"""The compact digest set that de-duplicates streamed lists behaves as a set."""

from __future__ import annotations

import random

from digest.audience.digest_set import DigestSet


def test_behaves_like_a_set_through_growth() -> None:
    rng = random.Random(7)
    keys = [rng.getrandbits(64) for _ in range(50_000)]
    keys += keys[:5_000]  # repeats
    compact, reference = DigestSet(capacity=4), set()
    for key in keys:
        assert compact.add(key) is (key not in reference)
        reference.add(key)
    assert len(compact) == len(reference) == 50_000
    assert all(key in compact for key in reference)
    assert not any(rng.getrandbits(64) in compact for _ in range(1_000))


def test_zero_and_the_largest_digest_are_members_like_any_other() -> None:
    compact = DigestSet()
    assert compact.add(0) and 0 in compact
    assert compact.add(2**64 - 1) and 2**64 - 1 in compact
    assert not compact.add(0)
    assert "0" not in compact


def test_a_set_sized_for_its_keys_holds_them_in_one_table() -> None:
    # A reader that knows its row count sizes the set once: growing would hold two tables.
    rng = random.Random(11)
    compact = DigestSet(capacity=20_000)
    table = compact._slots
    for _ in range(20_000):
        compact.add(rng.getrandbits(64))
    assert compact._slots is table and len(compact) == 20_000
    more = [rng.getrandbits(64) for _ in range(30_000)]  # well past its capacity: it grows
    assert all(compact.add(key) for key in more)
    assert len(compact) == 50_000 and all(key in compact for key in more)
