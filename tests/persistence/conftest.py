"""Fixtures for the persistence tests: the anyio backend and a store of each backend."""

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

from tether.persistence import MemoryStore, SqliteStore, Store


@pytest.fixture
def anyio_backend() -> str:
    # aiosqlite is asyncio-only.
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened store of each backend (SQLite on a real file), closed after the test."""
    s: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "t.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()
