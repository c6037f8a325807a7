"""Tools for the server crash test (``tether dev --modules tools,server_tools``)."""

from __future__ import annotations

import os

import anyio

from tether import tool
from tether.errors import RateLimited


@tool
async def slow_step(step: int, log: str) -> int:
    """Sleeps a little, then appends one line per actual run (the side-effect counter)."""
    await anyio.sleep(0.05)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{step}\n".encode())
    finally:
        os.close(fd)
    return step


@tool
async def call_api(api_key: str, n: int) -> int:
    """Stands for a tool that calls a provider with a secret: its input must stay in the
    engine (the HTTP worker security tests)."""
    return n + len(api_key)


_limited: set[int] = set()


@tool
async def limited_once(n: int) -> int:
    """Rate limited (a 429) the first time it sees ``n``, then passes it on (the metrics
    test: each run parks once)."""
    if n not in _limited:
        _limited.add(n)
        raise RateLimited(0, "429 from the provider")
    return n


@tool
async def fails_when_big(n: int) -> int:
    """Fails for ``n`` over 5 (the metrics test: a failing node with retries)."""
    if n > 5:
        raise ValueError("too big")
    return n


@tool
async def big_text(size: int) -> str:
    """A step whose result is ``size`` characters (the artifact tests: past 8 KiB, the journal
    holds a reference)."""
    return "x" * min(size, 1 << 20)
