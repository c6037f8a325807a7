"""Checks both backends run before writing, so bad rows are refused the same way everywhere
(I10): ids the journal can hold, well-formed turns, leases and schedules.

Example::

    check_turns([turn])        # raises StorageError naming the execution and the problem
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.persistence.contract import (
    MISSED_POLICIES,
    SETTLE_STATUSES,
    ScheduleRow,
    StorageError,
    Turn,
    WorkItemRow,
)


def check_id(value: str, what: str) -> None:
    """An id the journal can store and look up again: non-empty UTF-8 text without NUL.

    A NUL does not survive SQLite's JSON functions, and a lone surrogate does not encode;
    either would otherwise fail deep inside the writer, for every execution in its batch.
    """
    if not isinstance(value, str) or not value:
        raise StorageError(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise StorageError(f"{what} {value!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StorageError(f"{what} {value!r} is not valid text: {exc.reason}") from None


def check_schedule(row: ScheduleRow) -> None:
    """Refuse a schedule row a backend could store but no engine could run (both backends)."""
    check_id(row.schedule_id, "schedule id")
    check_id(row.workflow_id, f"schedule {row.schedule_id}: workflow id")
    check_id(row.workflow_version, f"schedule {row.schedule_id}: workflow version")
    check_id(row.cron, f"schedule {row.schedule_id}: cron expression")
    check_id(row.timezone, f"schedule {row.schedule_id}: time zone")
    if row.missed not in MISSED_POLICIES:
        raise StorageError(
            f"schedule {row.schedule_id}: missed policy must be one of "
            f"{sorted(MISSED_POLICIES)}, got {row.missed!r}"
        )


def check_turns(turns: Sequence[Turn]) -> None:
    """Reject malformed turns before they reach a backend (shared by both backends)."""
    for turn in turns:
        check_id(turn.execution_id, "execution id")
        if turn.passive is not None and turn.snapshot is None:
            raise StorageError(
                f"execution {turn.execution_id}: a passivating turn must carry its snapshot"
            )
        for item in turn.work_items:
            check_id(item.work_item_id, "work item id")
            check_id(item.queue, "queue")
        for settle in turn.settles:
            check_id(settle.work_item_id, "work item id")
        if turn.expected_seq < 1:
            raise StorageError(f"execution {turn.execution_id}: expected_seq must be >= 1")
        if not turn.records:
            raise StorageError(f"execution {turn.execution_id}: a turn needs at least one record")
        for item in turn.work_items:
            problem = _new_item_problem(item)
            if problem is not None:
                raise StorageError(
                    f"execution {turn.execution_id}: work item {item.work_item_id} {problem}"
                )
        for settle in turn.settles:
            if settle.status not in SETTLE_STATUSES:
                raise StorageError(
                    f"execution {turn.execution_id}: work item {settle.work_item_id} cannot be "
                    f"settled as {settle.status!r}; expected one of {sorted(SETTLE_STATUSES)}"
                )


def check_reissued(rows: Sequence[WorkItemRow]) -> None:
    """Rows ``Store.reissue`` may insert: pending, not leased, with ids the journal can hold."""
    for row in rows:
        check_id(row.work_item_id, "work item id")
        check_id(row.execution_id, f"work item {row.work_item_id}: execution id")
        check_id(row.queue, f"work item {row.work_item_id}: queue")
        if row.status != "pending" or row.lease_owner is not None or row.lease_expires_ms:
            raise StorageError(
                f"work item {row.work_item_id}: a reissued item must be pending without a "
                f"lease (got status {row.status}, owner {row.lease_owner})"
            )


def _new_item_problem(item: WorkItemRow) -> str | None:
    """A new item is pending without a lease, or leased at creation (fence >= 1, owner and
    expiry set): an engine may grant a local worker the item in the turn that creates it."""
    lease = (item.lease_owner, item.lease_expires_ms)
    if item.status == "pending" and lease == (None, None):
        return None
    if item.status == "leased" and None not in lease and item.fence >= 1:
        return None
    return (
        f"must be created pending without a lease, or leased with an owner, an expiry and "
        f"fence >= 1 (got status {item.status}, owner {item.lease_owner}, fence {item.fence})"
    )


def check_lease_args(ttl_ms: int, what: str) -> None:
    """A lease needs a positive time to live (a zero ttl would be expired when granted)."""
    if ttl_ms <= 0:
        raise StorageError(f"{what}: ttl_ms must be > 0, got {ttl_ms}")


def check_projection_limit(limit: int) -> None:
    """A projection step moves at least one status change (0 would never catch up)."""
    if limit < 1:
        raise StorageError(f"project_views: limit must be at least 1, got {limit}")
