"""The tools of the fleet tracing test (``tether worker --modules otel_tools``)."""

from __future__ import annotations

from tether.runtime.tools import tool


@tool
async def inc(n: int) -> int:
    return n + 1
