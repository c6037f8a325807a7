"""Executions whose actor gave up because the store could not write (a full disk, an I/O error)
are started again from their journal once it can, instead of being reported broken.

A plain :class:`~tether.persistence.contract.StorageError` is what a writer raises when a
transaction did not commit: nothing of that turn happened (I1), and the journal holds
everything that did, so the same recovery as after a restart picks the run up where it stood.
When the writer saw the storage's passing trouble (``transient``: a full disk, an I/O error, a
lost connection) the run is started again for as long as it takes, so the engine goes on once
room is back. Any other failure to write would fail the same way on every try: after
``LASTING_TRIES`` revivals in a row it breaks the execution with the cause, instead of a
recovery every few seconds forever. Its subclasses (a corrupt row, a sequence conflict, a
closed store) are verdicts about the journal, not about the disk, and break it at once.

Example::

    revival = StorageRevival(clock, ensure_spawned, mark_broken)
    if revival.takes(error):
        task_group.start_soon(revival.revive, execution_id, error)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from tether.clock import Clock
from tether.persistence.contract import StorageError

log = logging.getLogger("tether.execution")

#: First wait before a revival, doubled after each revival that failed the same way, up to
#: the cap: a disk that stays full costs one recovery attempt per execution every few seconds.
FIRST_WAIT_SECS: Final = 0.5
MAX_WAIT_SECS: Final = 5.0
#: Revivals in a row after a failure not known to pass before the execution is broken.
LASTING_TRIES: Final = 5
#: A revival this long after the one before starts the count (and the wait) afresh: the run
#: got on in between.
FRESH_AFTER_SECS: Final = 60.0


class StorageRevival:
    """Starts an execution again, with backoff, after a failure to write its journal."""

    def __init__(
        self,
        clock: Clock,
        spawn: Callable[[str], Awaitable[object]],
        broken: Callable[[str, str], None],
    ) -> None:
        self._clock = clock
        self._spawn = spawn
        self._broken = broken
        #: Revivals in a row of each execution, and when its last one began.
        self._tries: dict[str, tuple[int, float]] = {}
        self._waiting: set[str] = set()
        self._swept_at = clock.monotonic()

    @staticmethod
    def takes(error: BaseException) -> bool:
        """True for a write that failed on the storage side (exactly ``StorageError``)."""
        return type(error) is StorageError

    async def revive(self, execution_id: str, error: BaseException) -> None:
        """Wait (longer each time in a row), then start the execution from its journal. If the
        store still cannot write, its actor fails again and lands here again."""
        if execution_id in self._waiting:
            return  # one revival at a time per execution
        tries = self._count(execution_id)
        transient = getattr(error, "transient", False)
        if tries >= LASTING_TRIES and not transient:
            self._tries.pop(execution_id, None)
            self._broken(
                execution_id, f"its journal could not be written in {tries + 1} tries: {error}"
            )
            return
        wait = min(MAX_WAIT_SECS, FIRST_WAIT_SECS * 2**tries)
        log.warning(
            "execution %s stopped: its journal could not be written (%s); starting it again "
            "from its journal in %.1f s", execution_id, error, wait,
        )  # fmt: skip
        self._waiting.add(execution_id)
        try:
            await self._clock.sleep(wait)
            await self._spawn(execution_id)
        except Exception as exc:  # the store closed meanwhile, or cannot even be read
            self._broken(execution_id, f"could not be started again after {error}: {exc!r}")
        finally:
            self._waiting.discard(execution_id)

    def _count(self, execution_id: str) -> int:
        """The revivals in a row before this one, counted from now (entries past the fresh
        window are dropped, so the table holds only executions in trouble)."""
        now = self._clock.monotonic()
        if now - self._swept_at >= FRESH_AFTER_SECS:  # once a window: a storm has many runs
            self._swept_at = now
            stale = [e for e, (_, at) in self._tries.items() if now - at >= FRESH_AFTER_SECS]
            for eid in stale:
                del self._tries[eid]
        tries, at = self._tries.get(execution_id, (0, now))
        if now - at >= FRESH_AFTER_SECS:
            tries = 0
        self._tries[execution_id] = (tries + 1, now)
        return tries
