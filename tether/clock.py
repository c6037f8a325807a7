"""Injected time. Nothing in Tether reads the system clock directly; it asks a ``Clock``.

The runtime, the actor kernel's supervisors and the executors take a clock, so tests can run a
day of backoffs in milliseconds with :class:`tether.testing.VirtualClock`.

Example::

    clock = SystemClock()
    started = clock.now()          # wall time, seconds since the epoch
    await clock.sleep(0.1)
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """Wall time for records, monotonic time for intervals, and a sleep that honours both."""

    def now(self) -> float:
        """Seconds since the epoch (goes into journal records as milliseconds)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts and restart windows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def now_ms(clock: Clock) -> int:
    """Wall time in whole milliseconds, the unit journal records carry."""
    return int(clock.now() * 1000)
