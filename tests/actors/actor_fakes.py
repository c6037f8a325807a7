"""Test doubles for the actor kernel tests (a unique module name: every test dir has a conftest)."""

from __future__ import annotations

import anyio


class FakeClock:
    """A clock whose sleep returns at once but records what was asked; time moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()
