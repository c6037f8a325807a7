"""Execution ids: ``exec_`` + a ULID made from the injected clock and random source.

Example::

    new_execution_id(SystemClock(), random.Random())   # 'exec_01JD3...'
"""

from __future__ import annotations

import random

from tether.clock import Clock

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, rng: random.Random) -> str:
    """26 characters: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    value = ((ms & ((1 << 48) - 1)) << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_execution_id(clock: Clock, rng: random.Random) -> str:
    return "exec_" + ulid(int(clock.now() * 1000), rng)
