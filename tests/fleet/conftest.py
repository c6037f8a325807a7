"""Fixtures for the fleet transport tests: the asyncio backend and a raw-socket context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq.asyncio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def zctx() -> Iterator[zmq.asyncio.Context]:
    """A zmq.asyncio context for hand-made peers (bad frames, fake engines)."""
    ctx = zmq.asyncio.Context()
    yield ctx
    ctx.destroy(linger=0)
