"""Tools of the dashboard tests' engine (``tether dev --modules ui_tools``)."""

from __future__ import annotations

from tether import tool

_seen: set[int] = set()


@tool
async def add_one(n: int) -> int:
    return n + 1


@tool
async def flaky(n: int) -> int:
    """Fails the first time it sees ``n`` (a retried attempt on the timeline), then passes."""
    if n not in _seen:
        _seen.add(n)
        raise ConnectionError(f"flaky: first call for {n} dropped")
    return n + 1


@tool
async def boom(n: int) -> int:
    """Always fails: the run dead-letters its step and fails with this traceback."""
    raise ValueError(f"boom: {n} is not acceptable")
