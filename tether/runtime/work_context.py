"""Which work item the in-process pool is running, for a built-in tool that must know (durable
memory keys a write by its execution, node and visit so a re-sent hand-out writes nothing
twice: I4). Set by the pool around each call; None elsewhere (fleet workers do not set it).

Example::

    item = current_work_item()
    key = f"{item.execution_id}/{item.node_id}/{item.dispatch - item.attempt + 1}"
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.runtime.executor import WorkItem

#: The work item whose tool runs in this task (the pool's workers and inline calls).
CURRENT_WORK_ITEM: ContextVar[WorkItem | None] = ContextVar("tether_work_item", default=None)


def current_work_item() -> WorkItem | None:
    """The work item the calling tool runs for, or None outside the in-process pool."""
    return CURRENT_WORK_ITEM.get()
