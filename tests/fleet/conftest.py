"""Fixtures for the fleet transport tests: the asyncio backend and a raw-socket context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.asyncio
from fleet_processes import Children


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def zctx() -> Iterator[zmq.asyncio.Context]:
    """A zmq.asyncio context for hand-made peers (bad frames, fake engines)."""
    ctx = zmq.asyncio.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path, tmp_path / "effects.log")
    try:
        yield kids
    finally:
        kids.cleanup()
