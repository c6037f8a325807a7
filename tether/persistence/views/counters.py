"""Counts over a creation-time window from hourly counters: the whole hours inside the window
come from the counters (one row per hour, workflow and status), the ragged ends from the
view's rows (an index range over at most two partial hours).

Example::

    w = split_window(created_from_ms=5_400_000, created_before_ms=None)
    # Window(full_from=7_200_000, full_before=None, edges=((5_400_000, 7_200_000),))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Final

import msgspec

from tether.persistence.pages import ExecutionQuery

#: The counters' bucket: an hour of creation time.
HOUR_MS: Final = 3_600_000


def bucket_of(created_at_ms: int) -> int:
    """The start of the hour ``created_at_ms`` falls in."""
    return created_at_ms - created_at_ms % HOUR_MS


class Window(msgspec.Struct, frozen=True):
    """``[full_from, full_before)`` in whole hours (None: unbounded; an empty window when both
    are set and ``full_from >= full_before``), and the ``[from, before)`` ends outside it."""

    full_from: int | None
    full_before: int | None
    edges: tuple[tuple[int | None, int | None], ...]

    @property
    def has_full(self) -> bool:
        return (
            self.full_from is None
            or self.full_before is None
            or (self.full_from < self.full_before)
        )


def split_window(created_from_ms: int | None, created_before_ms: int | None) -> Window:
    """Whole hours from the counters, the rest from the rows (see the module docstring)."""
    lo, hi = created_from_ms, created_before_ms
    full_lo = None if lo is None else -(-lo // HOUR_MS) * HOUR_MS  # up to an hour's start
    full_hi = None if hi is None else bucket_of(hi)
    if full_lo is not None and full_hi is not None and full_lo >= full_hi:
        return Window(0, 0, ((lo, hi),))  # inside one or two partial hours: rows only
    edges: list[tuple[int | None, int | None]] = []
    if lo is not None and lo != full_lo:
        edges.append((lo, full_lo))
    if hi is not None and hi != full_hi:
        edges.append((full_hi, hi))
    return Window(full_lo, full_hi, tuple(edges))


def count_moves(
    old: Iterable[tuple[int, str, str]], new: Iterable[tuple[int, str, str]]
) -> dict[tuple[int, str, str], int]:
    """How each ``(hour, workflow, status)`` counter moves when view rows keyed
    ``(created_at_ms, workflow_id, status)`` ``old`` become ``new``: only those that move."""
    moves: Counter[tuple[int, str, str]] = Counter()
    for created, workflow_id, status in old:
        moves[(bucket_of(created), workflow_id, status)] -= 1
    for created, workflow_id, status in new:
        moves[(bucket_of(created), workflow_id, status)] += 1
    return {key: n for key, n in moves.items() if n}


def edge_query(query: ExecutionQuery, lo: int | None, hi: int | None) -> ExecutionQuery:
    """``query``'s workflow over one ragged end ``[lo, hi)`` of its window."""
    return ExecutionQuery(workflow_id=query.workflow_id, created_from_ms=lo, created_before_ms=hi)
