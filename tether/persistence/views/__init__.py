"""The run views: what cross-run reads (pages, counts per status, pending approvals, the
metrics' gauge) come from, kept by a projector that follows the journal, off the turn.

A turn that changes an execution's status (its start, a pause, its end: a few per run, never
the common step) appends one row to a *feed* in its own transaction, naming the execution and
the turn's last record. The projector (``Store.project_views``, driven by
:class:`tether.runtime.projector.Projector`) reads the feed from the position it persisted,
copies each named execution's index row into the view table, moves the counters by the
difference, and persists the new position, all in one transaction: a crash before the commit
leaves the old position and the old view, and the next projection does the same work again.
The view is therefore *eventually consistent*: it trails the index by what the feed holds
past the position (``Store.views_behind``).

Example::

    while await store.project_views(limit=1000) == 1000:
        pass                                    # caught up with every committed turn
    counts = await store.count_executions(ExecutionQuery(workflow_id="pay"))
"""

from tether.persistence.views.counters import (
    HOUR_MS,
    Window,
    bucket_of,
    count_moves,
    edge_query,
    split_window,
)

__all__ = ["HOUR_MS", "Window", "bucket_of", "count_moves", "edge_query", "split_window"]
