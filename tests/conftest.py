"""Fixtures shared by every test folder: a fresh Postgres schema per test, when a server is
named by ``TETHER_TEST_POSTGRES_URL``; without one (or unreachable) those tests skip, saying
how to run them (postgres_schemas.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_schemas import FreshSchema, server_url, why


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server's URL, checked once per session; skips the test when there is none."""
    url = server_url()
    if url is None:
        pytest.skip(why() or "no Postgres server")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose tables go in a new, empty schema, dropped after the test."""
    schema = FreshSchema(postgres_server)
    try:
        yield schema.url
    finally:
        schema.drop()
