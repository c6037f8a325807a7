"""``open_store``: a Store from a URL (``sqlite:///rel.db``, ``sqlite:////abs.db``, ``memory://``).

Example::

    store = await open_store("sqlite:///.tether/runtime.db")   # relative to the cwd
    store = await open_store("sqlite:////var/lib/tether/runtime.db", durability="normal")
    store = await open_store("memory://")
"""

from __future__ import annotations

from pathlib import Path

from tether.persistence.contract import Durability, Store
from tether.persistence.memory import MemoryStore
from tether.persistence.sqlite import SqliteStore

_SQLITE = "sqlite:///"
_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or memory://"


def store_for_url(url: str, durability: Durability = "full", readonly: bool = False) -> Store:
    """The (not yet opened) store a URL names; ValueError saying what is wrong otherwise."""
    if url == "memory://":
        return MemoryStore(durability=durability, readonly=readonly)
    if url.startswith(_SQLITE):
        rest = url[len(_SQLITE) :]
        # "sqlite:////abs" leaves "/abs" (absolute); "sqlite:///rel" leaves "rel".
        if not rest or rest.endswith("/") or "?" in rest or "#" in rest:
            raise ValueError(f"bad storage URL {url!r}: expected a file path ({_FORMS})")
        return SqliteStore(Path(rest), durability=durability, readonly=readonly)
    raise ValueError(f"bad storage URL {url!r}: expected {_FORMS}")


async def open_store(url: str, durability: Durability = "full", readonly: bool = False) -> Store:
    """Open the store ``url`` names (creating a SQLite file and its directory if missing)."""
    store = store_for_url(url, durability=durability, readonly=readonly)
    await store.open()
    return store
