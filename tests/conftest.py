"""Fixtures shared by every test folder: a fresh Postgres schema per test, when a server is
named by ``TETHER_TEST_POSTGRES_URL``; without one (or unreachable) those tests skip, saying
how to run them."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from urllib.parse import quote

import pytest

POSTGRES_ENV = "TETHER_TEST_POSTGRES_URL"
_HOW = (
    f"set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test (a database the tests may "
    "create schemas in) and pip install -e '.[postgres]' to run them"
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server's URL, checked once per session; skips the test when there is none."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(f"Postgres tests skipped: {POSTGRES_ENV} is unset; {_HOW}")
    try:
        import psycopg
    except ImportError:
        pytest.skip(f"Postgres tests skipped: the psycopg driver is not installed; {_HOW}")
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"Postgres tests skipped: {POSTGRES_ENV} is unreachable ({exc}); {_HOW}")
    return url


def with_search_path(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema`` (libpq ``options``)."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose tables go in a new, empty schema, dropped after the test."""
    import psycopg

    schema = f"tether_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")  # a connection left open must not hang us
            try:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            except psycopg.errors.LockNotAvailable as exc:
                warnings.warn(f"schema {schema} left behind: {exc}", stacklevel=1)
