"""The run views of the memory store: the same feed, position and projection as the SQL
stores (:mod:`tether.persistence.views`), kept in dicts; counts are read from the view's
rows (a memory store holds few).

Example::

    views = MemoryViews()
    views.feed("exec_1", 1)                 # in the turn that changed exec_1's status
    views.project(index, limit=1000)        # index: execution id -> ExecutionRow
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import msgspec

from tether.persistence.contract import ExecutionRow
from tether.persistence.pages import ExecutionQuery, PagePosition, execution_matches, is_after


class MemoryViews:
    def __init__(self) -> None:
        self._feed: list[tuple[int, str]] = []
        self._next_pos = 1
        self.position = 0
        #: The view's rows: index rows as the projector last copied them.
        self.rows: dict[str, ExecutionRow] = {}

    def feed(self, execution_id: str, seq: int) -> None:
        """A status change committed (called in the turn that made it)."""
        del seq  # the SQL stores keep it for whoever reads their feed; nothing reads it here
        self._feed.append((self._next_pos, execution_id))
        self._next_pos += 1

    def project(self, index: Mapping[str, ExecutionRow], limit: int) -> int:
        taken = self._feed[:limit]
        if not taken:
            return 0
        for _, eid in taken:
            row = index.get(eid)
            if row is None:
                self.rows.pop(eid, None)
            else:
                self.rows[eid] = row
        self.position = taken[-1][0]
        del self._feed[:limit]
        return len(taken)

    def behind(self) -> int:
        return len(self._feed)

    def page(
        self,
        index: Mapping[str, ExecutionRow],
        query: ExecutionQuery,
        after: PagePosition | None,
        limit: int,
        oldest_first: bool,
    ) -> list[ExecutionRow]:
        rows = [
            r
            for r in self.rows.values()
            if execution_matches(query, r, with_status=True)
            and is_after(after, r.created_at_ms, r.execution_id, oldest_first=oldest_first)
        ]
        rows.sort(key=lambda r: (r.created_at_ms, r.execution_id), reverse=not oldest_first)
        return [_now(r, index) for r in rows[: max(limit, 0)]]

    def count(self, query: ExecutionQuery) -> dict[str, int]:
        counts: Counter[str] = Counter(
            r.status for r in self.rows.values() if execution_matches(query, r, with_status=False)
        )
        return dict(counts)


def _now(row: ExecutionRow, index: Mapping[str, ExecutionRow]) -> ExecutionRow:
    """The view's row with the index's last_seq and passive mark as they are now."""
    current = index.get(row.execution_id)
    if current is None:
        return row
    return msgspec.structs.replace(
        row, last_seq=current.last_seq, passivated=current.passivated,
        wake_at_ms=current.wake_at_ms,
    )  # fmt: skip
