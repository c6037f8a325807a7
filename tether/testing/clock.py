"""A virtual clock for tests: time moves only when the test says so.

Example::

    clock = VirtualClock()
    async with Runtime("memory://", tools=[...], clock=clock) as rt:
        ...
        clock.advance(3600)          # an hour of backoffs and timeouts, at once
"""

from __future__ import annotations

import heapq

import anyio
import anyio.lowlevel


class VirtualClock:
    """Implements :class:`tether.clock.Clock`; ``sleep`` waits until ``advance`` passes it."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._wall_offset = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._counter = 0
        self._slept: anyio.Event | None = None  # set when a sleep begins (made on first use)

    def now(self) -> float:
        return self._wall_offset + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        self._counter += 1
        heapq.heappush(self._sleepers, (self._mono + seconds, self._counter, event))
        if self._slept is not None:
            self._slept.set()
            self._slept = None
        try:
            await event.wait()
        finally:
            # A sleep cancelled before its time (its runtime stopped or crashed) is no
            # sleeper any more: a test counting sleepers must not wait on it.
            event.set()

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting (tests wait for this to reach a count, not for time)."""
        return sum(1 for *_, ev in self._sleepers if not ev.is_set())

    async def sleeping_until(self, deadline: float) -> None:
        """Return once something sleeps until monotonic ``deadline`` or earlier: a timer was
        armed, so advancing to it now wakes it (no polling, no real time).

        Example::

            await clock.sleeping_until(clock.monotonic() + 3600)   # the 1 h wait is armed
            clock.advance(3600)
        """
        while not any(due <= deadline and not ev.is_set() for due, _, ev in self._sleepers):
            if self._slept is None:
                self._slept = anyio.Event()
            await self._slept.wait()

    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest pending sleep, or None."""
        while self._sleepers and self._sleepers[0][2].is_set():  # woken or cancelled
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleep that is now due."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._mono += seconds
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, event = heapq.heappop(self._sleepers)
            event.set()

    def advance_to_next(self) -> bool:
        """Jump to the next pending sleep's deadline; False when nothing sleeps."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.advance(max(0.0, deadline - self._mono))
        return True
