"""Fresh Postgres schemas for tests: the server comes from ``TETHER_TEST_POSTGRES_URL``.

The ``postgres_url`` fixture (conftest.py) uses these; hypothesis state machines, which take
no fixtures, call them directly and leave Postgres out when there is no server.

Example::

    base = server_url()                  # None: unset, no driver, or unreachable (see why())
    if base is not None:
        schema = FreshSchema(base)       # CREATE SCHEMA tether_test_...
        store = PostgresStore(schema.url)
        ...
        schema.drop()
"""

from __future__ import annotations

import functools
import os
import uuid
import warnings
from urllib.parse import quote

POSTGRES_ENV = "TETHER_TEST_POSTGRES_URL"
HOW = (
    f"set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test (a database the tests may "
    "create schemas in) and pip install -e '.[postgres]' to run them"
)


@functools.cache
def why() -> str | None:
    """Why there is no server to test on (None: there is one)."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        return f"Postgres tests skipped: {POSTGRES_ENV} is unset; {HOW}"
    try:
        import psycopg
    except ImportError:
        return f"Postgres tests skipped: the psycopg driver is not installed; {HOW}"
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True):
            pass
    except psycopg.Error as exc:
        return f"Postgres tests skipped: {POSTGRES_ENV} is unreachable ({exc}); {HOW}"
    return None


def server_url() -> str | None:
    """The server's URL, or None when there is none to test on."""
    return None if why() is not None else os.environ[POSTGRES_ENV].strip()


def with_search_path(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema`` (libpq ``options``)."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


class FreshSchema:
    """A new, empty schema on ``base``; ``url`` points connections at it."""

    def __init__(self, base: str) -> None:
        import psycopg

        self.base = base
        self.name = f"tether_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        self.url = with_search_path(base, self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")  # a connection left open must not hang us
            try:
                conn.execute(f'DROP SCHEMA "{self.name}" CASCADE')
            except psycopg.errors.LockNotAvailable as exc:
                warnings.warn(f"schema {self.name} left behind: {exc}", stacklevel=1)
