"""Tools for the size-limit tests (``--modules big_tools``)."""

from __future__ import annotations

from tether.runtime.tools import tool


@tool
async def big(mib: int) -> str:
    """An output of ``mib`` MiB: above the engine's message limit for any mib >= 16."""
    return "x" * (mib * 1024 * 1024)


@tool
async def work(n: int) -> int:
    return n
