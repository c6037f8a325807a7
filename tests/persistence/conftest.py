"""Fixtures for the persistence tests: the anyio backend and a store of each backend
(memory, SQLite on a real file, Postgres in a fresh schema when ``TETHER_TEST_POSTGRES_URL``
names a server: see ../conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# `pytest` (not `python -m pytest`) does not put the project root on sys.path and the project
# is not installed in the venv; without this, `import tether` fails. Harmless when it is.
if importlib.util.find_spec("tether") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tether.persistence import MemoryStore, SqliteStore, Store, store_for_url


@pytest.fixture
def anyio_backend() -> str:
    # aiosqlite is asyncio-only.
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened store of each backend, closed after the test."""
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "t.db")
    else:  # asked for here only, so the other backends never skip for want of a server
        s = store_for_url(request.getfixturevalue("postgres_url"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()
