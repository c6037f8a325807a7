"""Fixtures for the actor kernel tests: the asyncio backend and a fake clock."""

from __future__ import annotations

import pytest
from actor_fakes import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
