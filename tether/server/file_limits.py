"""The engine's open-file limit, and how many HTTP connections fit in it.

Apart from :mod:`tether.server.connections` (which bounds the connections and imports
uvicorn): ``tether dev`` raises the limit before the journal and the worker port open, long
before the HTTP layer is imported.

Example::

    open_files = raise_open_file_limit()
    held = connection_budget(1000, open_files)   # 1000, or fewer if the limit is low
"""

from __future__ import annotations

import logging
import resource
from typing import Final

log = logging.getLogger("tether.server.connections")
#: File descriptors kept for the journal, the worker port and the rest besides connections.
FD_RESERVE: Final = 256
#: Target for the soft limit when the hard one is unlimited.
UNLIMITED_TARGET: Final = 65536


def raise_open_file_limit() -> int:
    """Lift this process's soft limit on open files to the hard limit (or to
    :data:`UNLIMITED_TARGET` when there is none); the soft limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # macOS caps the soft limit below the hard one
            pass
    return soft


def connection_budget(wanted: int, open_file_limit: int) -> int:
    """``wanted`` connections, or fewer if the open-file limit cannot hold them next to the
    engine's own files (logged: the operator raises the hard limit or the bound)."""
    room = max(16, open_file_limit - FD_RESERVE)
    if wanted <= room:
        return wanted
    log.warning(
        "TETHER_MAX_CONNECTIONS=%d does not fit the open-file limit %d: holding %d connections",
        wanted, open_file_limit, room,
    )  # fmt: skip
    return room
