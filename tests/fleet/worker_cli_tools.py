"""Tools for the CLI subprocess tests (``--modules worker_cli_tools``)."""

from __future__ import annotations

import anyio

from tether.runtime.tools import tool


@tool
async def echo(value: object) -> object:
    return value


@tool
def add(a: int, b: int) -> int:
    return a + b


@tool
async def slow(secs: float, value: object) -> object:
    """Runs long enough for the test to signal the worker while it runs."""
    await anyio.sleep(secs)
    return value
