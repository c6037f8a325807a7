"""The Postgres backend (``pip install 'tether[postgres]'``): schema migrations, SQL
operations, the group-commit writer and the store.

Example::

    from tether.persistence.postgres import PostgresStore

    async with PostgresStore("postgresql://tether@localhost/tether") as store:
        rows = await store.read("exec_1")
"""

from tether.persistence.postgres.store import PostgresStore
from tether.persistence.postgres.writer import WriterStats

__all__ = ["PostgresStore", "WriterStats"]
