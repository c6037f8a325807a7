"""What a worker's report against a live lease comes to, and what a leased row asks for.

The scheduler checks a remote worker's report against the lease it holds (owner, fence, not
reclaimed) before anything reaches the journal, and turns an accepted one into the
:class:`~tether.runtime.executor.NodeOutcome` its execution actor settles (I5).

Example::

    problem = report_problem(report, leases.get(report.work_item_id))
    if problem is None:
        await deliver(outcome_of(lease, report))
"""

from __future__ import annotations

import logging

import msgspec

from tether.persistence.contract import WorkItemRow
from tether.runtime.executor import NodeOutcome
from tether.runtime.scheduler_messages import LiveLease, WorkerReport
from tether.runtime.work import WorkSpec, decode_spec

log = logging.getLogger(__name__)


def spec_of(row: WorkItemRow) -> WorkSpec:
    """The row's payload; one that does not decode runs as an unknown tool, so its node fails
    through its execution like any other failure, with the reason."""
    try:
        return decode_spec(row.payload)
    except msgspec.DecodeError as exc:
        log.error("work item %s: payload does not decode: %s", row.work_item_id, exc)
        return WorkSpec(tool=f"<undecodable work item payload: {exc}>")


def report_problem(msg: WorkerReport, lease: LiveLease | None) -> str | None:
    """Why a worker's report is refused before it reaches the journal, or None."""
    if lease is None:
        return f"work item {msg.work_item_id}: no live lease (finished, reclaimed or unknown)"
    if lease.fence != msg.fence:
        return (
            f"work item {msg.work_item_id}: fence {msg.fence} is stale "
            f"(the current lease has fence {lease.fence})"
        )
    if lease.owner != msg.owner:
        return f"work item {msg.work_item_id}: leased to {lease.owner}, not {msg.owner}"
    if lease.closing:
        return f"work item {msg.work_item_id}: the lease was reclaimed"
    return None


def outcome_of(lease: LiveLease, msg: WorkerReport) -> NodeOutcome:
    """The outcome a report against a live lease hands to the execution actor."""
    row = lease.row
    return NodeOutcome(
        work_item_id=row.work_item_id,
        execution_id=row.execution_id,
        node_id=row.node_id,
        dispatch=row.dispatch,
        attempt=row.attempt,
        ok=msg.ok,
        output=msg.output,
        error=msg.error,
        error_type=msg.error_type,
        retryable=msg.retryable,
        traceback=msg.traceback,
        duration_ms=msg.duration_ms,
        fence=lease.fence,
        retry_after_secs=msg.retry_after_secs,
        reply=True,
        worker_id=lease.owner,
        cause=msg.cause,
    )
