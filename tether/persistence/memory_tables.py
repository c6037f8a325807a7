"""The tables of a ``MemoryStore``: the dicts it keeps, whether it is open, and the checks
every method makes before touching them.

The store's parts (the journal and index in :mod:`tether.persistence.memory`, work items in
:mod:`tether.persistence.memory_work_items`, schedules in
:mod:`tether.persistence.memory_schedules`) each build on this base, so they share one set of
tables and one open/closed state without importing one another.

Example::

    class MemorySchedules(MemoryTables):
        async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
            self._check_open()
            return self._schedules.get(schedule_id)
"""

from __future__ import annotations

from tether.persistence.artifacts.contract import ArtifactInfo
from tether.persistence.contract import (
    Durability,
    ExecutionRow,
    ScheduleRow,
    Snapshot,
    StorageError,
    StoreClosed,
    StoredRecord,
    WorkflowRow,
    WorkItemRow,
)
from tether.persistence.facts import FactRow
from tether.persistence.views.memory_views import MemoryViews


class MemoryTables:
    """The state a ``MemoryStore`` keeps in dicts; see the module docstring."""

    def __init__(self, durability: Durability = "full", readonly: bool = False) -> None:
        self.durability: Durability = durability
        self.readonly = readonly
        self._journal: dict[str, list[StoredRecord]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._executions: dict[str, ExecutionRow] = {}
        # Insertion order of this dict is registration order ("most recently registered").
        self._workflows: dict[tuple[str, str], WorkflowRow] = {}
        self._items: dict[str, WorkItemRow] = {}
        self._schedules: dict[str, ScheduleRow] = {}
        self._facts: dict[str, dict[str, FactRow]] = {}
        self._facts_written = 0
        #: digest -> (bytes, info); a test may corrupt the bytes to see a read refuse them.
        self.artifacts: dict[str, tuple[bytes, ArtifactInfo]] = {}
        self._views = MemoryViews()
        self._state = "new"

    async def open(self) -> None:
        if self._state == "closed":
            raise StoreClosed("memory store is closed; create a new one")
        self._state = "open"

    async def close(self) -> None:
        self._state = "closed"

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise StorageError("memory store is open read-only; writes are refused")

    def _check_open(self) -> None:
        if self._state == "closed":
            raise StoreClosed("memory store is closed")
        if self._state != "open":
            raise StorageError("memory store is not open; call open() first")
