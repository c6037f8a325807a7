"""The SQLite backend: schema migrations, SQL operations, the group-commit writer, the store."""

from tether.persistence.sqlite.store import SqliteStore
from tether.persistence.sqlite.writer import WriterStats

__all__ = ["SqliteStore", "WriterStats"]
