"""A step an HTTP worker says it cannot serve is offered to another worker, not failed.

Two `jamjet worker` processes on one queue (the default ``general``), each serving its own
workflow: each is handed the other's steps too, and answers ``unknown node_id: X``. Counted as
failures, those answers spent the run's attempts and failed it. They are parks instead (no
attempt spent, a ``node_parked`` record saying who declined), longer each time the same step
is declined, so a step no worker serves waits for one without filling its journal.

Example::

    declines = Declines()
    declines.park_secs("unknown node_id: summarize", "exec_1/summarize/1")    # 1.0
    declines.park_secs("unknown node_id: summarize", "exec_1/summarize/1")    # 2.0
    declines.park_secs("ValueError: bad input", "exec_1/other/1")             # None
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Final

#: What the jamjet SDK's worker answers for a step it has no function for.
_CANNOT_SERVE: Final = re.compile(r"^unknown node_id: ")
FIRST_PARK_SECS: Final = 1.0
MAX_PARK_SECS: Final = 60.0
#: Steps whose declines are counted at once (the oldest forgotten first).
_KEPT: Final = 10_000


class Declines:
    """How long each declined step parks: doubling per decline of the same hand-out."""

    def __init__(self) -> None:
        self._count: OrderedDict[str, int] = OrderedDict()

    def park_secs(self, error: str, work_item_id: str) -> float | None:
        """The park for a failure report that is a decline, or None for a real failure."""
        if not _CANNOT_SERVE.match(error):
            return None
        n = self._count.pop(work_item_id, 0) + 1
        self._count[work_item_id] = n
        while len(self._count) > _KEPT:
            self._count.popitem(last=False)
        return min(MAX_PARK_SECS, FIRST_PARK_SECS * float(2 ** (n - 1)))
