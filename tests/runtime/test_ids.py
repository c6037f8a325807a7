"""Execution ids: a ULID from the injected clock and random source, Crockford base32."""

from __future__ import annotations

import random

from tether.runtime.ids import ulid

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference_ulid(ms: int, rng: random.Random) -> str:
    """The ULID spec digit by digit: 48 bits of ms, 80 random bits, 5 bits a digit."""
    value = ((ms & ((1 << 48) - 1)) << 80) | rng.getrandbits(80)
    digits = []
    for _ in range(26):
        digits.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def test_ulid_matches_the_spec_digit_by_digit() -> None:
    picks = random.Random(14)
    cases = [0, 1, (1 << 48) - 1, 1 << 48] + [picks.getrandbits(50) for _ in range(2000)]
    for ms in cases:
        seed = picks.getrandbits(32)
        assert ulid(ms, random.Random(seed)) == _reference_ulid(ms, random.Random(seed)), ms


def test_ulids_sort_by_their_milliseconds() -> None:
    rng = random.Random(3)
    ids = [ulid(ms, rng) for ms in (5, 1_700_000_000_000, 1_700_000_000_001, (1 << 48) - 1)]
    assert ids == sorted(ids)
    assert all(len(i) == 26 and set(i) <= set(_CROCKFORD) for i in ids)
