"""The one-writer-process lock (I6): an exclusive ``flock`` on a ``<db>.lock`` sidecar file.

SQLite's own locking would let a second process open the file and then fail (or wait) at its
first write; the sidecar makes the second writer fail at open, with the holder's pid. The OS
drops a flock when its holder dies, SIGKILL included, so a restarted engine opens fine. The file
is left in place on release: deleting it would race with the next opener.

Example::

    lock = WriterLock(Path("runtime.db"))
    lock.acquire()          # DatabaseLocked if another process holds it
    ...
    lock.release()
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from tether.persistence.contract import DatabaseLocked


class WriterLock:
    """An exclusive, non-blocking lock on ``<db>.lock`` holding the owner's pid."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        # The real file's name: a symlink to the database must find the same lock.
        real = db_path.resolve()
        self.path = real.with_name(real.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        # os.open makes the fd non-inheritable, so child processes do not keep the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DatabaseLocked(self._message(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _message(self, holder: int | None) -> str:
        if holder == os.getpid():
            who = f"this process (pid {holder}) through another open store"
        elif holder is not None:
            who = f"another process (pid {holder})"
        else:
            who = "another process"
        return (
            f"database {self.db_path} is already open for writing by {who}; only one writer "
            f"may open it (lock file {self.path}). Stop that engine, or open the store "
            "read-only."
        )


def wait_until_free(db_path: Path, on_wait: Callable[[int | None], None] | None = None) -> None:
    """Block until no process holds ``db_path``'s writer lock (a standby engine waits here for
    the one writing to stop, SIGKILL included); ``on_wait(holder_pid)`` is called first if it
    is held. It takes the lock and lets it go at once: the store takes it again when it opens,
    so a second standby that wins the race is refused there, with the usual error.

    Example::

        wait_until_free(Path("runtime.db"))   # returns when the engine holding it is gone
    """
    path = WriterLock(db_path).path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(_read_pid(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
