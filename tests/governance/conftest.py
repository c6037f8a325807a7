"""Fixtures for the governance tests: the anyio backend (aiosqlite is asyncio-only)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
