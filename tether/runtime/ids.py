"""Execution ids: ``exec_`` + a ULID made from the injected clock and random source.

Example::

    new_execution_id(SystemClock(), random.Random())   # 'exec_01JD3...'
"""

from __future__ import annotations

import base64
import random

from tether.clock import Clock

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: RFC 4648 base32's digits to Crockford's, digit for digit.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def ulid(ms: int, rng: random.Random) -> str:
    """26 characters: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    value = ((ms & ((1 << 48) - 1)) << 80) | rng.getrandbits(80)
    # 20 bytes are 32 base32 digits with no padding; the last 26 hold the 128 bits (a
    # C-level encode: a digit-by-digit loop cost ~2 us on every run's start).
    digits = base64.b32encode(value.to_bytes(20, "big")).translate(_TO_CROCKFORD)
    return digits[6:].decode("ascii")


def new_execution_id(clock: Clock, rng: random.Random) -> str:
    return "exec_" + ulid(int(clock.now() * 1000), rng)
