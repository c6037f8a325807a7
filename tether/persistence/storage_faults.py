"""Which failures to write are the storage's passing trouble rather than a lasting verdict.

A full disk, an I/O error, a busy database or a lost connection leave the journal as it was
(nothing of the failed transaction committed, I1) and may be over in a moment: the runtime
starts such a run again from its journal, without limit, with backoff
(``runtime.storage_revival``). Anything else (a value SQLite refuses, a constraint, a bug) would
fail the same way on every try, so those runs get a few tries and then a verdict.

Example::

    StorageError(f"{where}: turn was not written: {exc}", transient=storage_unavailable(exc))
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Final

#: SQLite's primary result codes that say the storage, not the write, is the trouble: BUSY,
#: LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL (extended codes keep these in the low byte).
_SQLITE_PASSING: Final = frozenset({5, 6, 10, 13, 14, 15})
#: PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient resources (disk
#: full, out of memory, too many connections), 57P operator intervention (shutdown, crash),
#: 58 system error (I/O).
_POSTGRES_PASSING: Final = ("08", "53", "57P", "58")
_OS_PASSING: Final = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT})


def storage_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store could not write for now (see the module's doc)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_PASSING
    if isinstance(exc, OSError):
        return exc.errno in _OS_PASSING
    state = getattr(exc, "sqlstate", None)  # psycopg's errors, without importing psycopg
    if isinstance(state, str):
        return state.startswith(_POSTGRES_PASSING)
    cause = exc.__cause__
    return cause is not None and cause is not exc and storage_unavailable(cause)
