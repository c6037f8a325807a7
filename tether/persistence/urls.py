"""``open_store``: a Store from a URL (``sqlite:///rel.db``, ``sqlite:////abs.db``,
``postgresql://user@host/db``, ``memory://``).

Example::

    store = await open_store("sqlite:///.tether/runtime.db")   # relative to the cwd
    store = await open_store("sqlite:////var/lib/tether/runtime.db", durability="normal")
    store = await open_store("postgresql://tether@db.internal/tether")
    store = await open_store("memory://")
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tether.persistence.contract import Durability, Store
from tether.persistence.memory import MemoryStore
from tether.persistence.ownership import refuse_shared
from tether.persistence.sqlite import SqliteStore

_SQLITE = "sqlite:///"
#: libpq takes both spellings.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, postgresql://user@host/db "
    "or memory://"
)


def store_for_url(
    url: str, durability: Durability = "full", readonly: bool = False, engine_id: str | None = None
) -> Store:
    """The (not yet opened) store a URL names; ValueError saying what is wrong otherwise.
    ``engine_id``: one of several engines sharing the database (Postgres only)."""
    if engine_id is not None and not url.startswith(POSTGRES_SCHEMES):
        raise refuse_shared(display_url(url))
    if url == "memory://":
        return MemoryStore(durability=durability, readonly=readonly)
    if url.startswith(_SQLITE):
        rest = url[len(_SQLITE) :]
        # "sqlite:////abs" leaves "/abs" (absolute); "sqlite:///rel" leaves "rel".
        if not rest or rest.endswith("/") or "?" in rest or "#" in rest:
            raise ValueError(f"bad storage URL {url!r}: expected a file path ({_FORMS})")
        return SqliteStore(Path(rest), durability=durability, readonly=readonly)
    if url.startswith(POSTGRES_SCHEMES):
        return _postgres_store(url, durability, readonly, engine_id)
    raise ValueError(f"bad storage URL {url!r}: expected {_FORMS}")


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names, else None.

    Example::

        sqlite_path("sqlite:///data/runtime.db")   # Path('data/runtime.db')
    """
    if not url.startswith(_SQLITE):
        return None
    rest = url[len(_SQLITE) :]
    return Path(rest) if rest and not rest.endswith("/") else None


def _postgres_store(
    url: str, durability: Durability, readonly: bool, engine_id: str | None = None
) -> Store:
    # Imported here: the driver is an optional extra, and SQLite users never load it.
    try:
        from tether.persistence.postgres import PostgresStore
    except ImportError as exc:
        raise ValueError(
            f"storage URL {url.split('://')[0]}://... needs the Postgres driver: "
            f"pip install 'tether[postgres]' ({exc})"
        ) from exc
    return PostgresStore(url, durability=durability, readonly=readonly, engine_id=engine_id)


async def open_store(
    url: str, durability: Durability = "full", readonly: bool = False, engine_id: str | None = None
) -> Store:
    """Open the store ``url`` names (creating a SQLite file and its directory if missing, and
    Tether's tables in a Postgres database that lacks them); with ``engine_id``, as one of
    several engines sharing a Postgres database (:mod:`tether.persistence.ownership`)."""
    store = store_for_url(url, durability=durability, readonly=readonly, engine_id=engine_id)
    await store.open()
    return store


def display_url(url: str) -> str:
    """``url`` fit for messages and logs: the password, if any, is left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))
