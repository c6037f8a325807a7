"""JSON views of executions and records, shaped for the ``jamjet`` SDK client and CLI.

The client reads ``status`` (terminal: completed, failed, cancelled, limit_exceeded),
``current_state``, ``output`` and ``error`` of an execution, and events as
``{sequence, kind: {type, ...}, created_at}``; ``jamjet replay`` needs the first event to be
``workflow_started`` with ``workflow_id``, ``workflow_version`` and ``initial_input``. Our
``execution_*`` records are named ``workflow_*`` here for that reason; every other record keeps
its journal name and fields.

Example::

    view = execution_view(row, state)            # a dict, ready for JSON
    events = [event_view(entry) for entry in await rt.journal(execution_id)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from tether.persistence import ExecutionRow
from tether.persistence.artifacts.spill import shown
from tether.runtime.records import JournalEntry, NodeCompleted, NodeFailed
from tether.runtime.state import ExecutionState
from tether.server.strategy_events import Labels, derived_events

#: Journal record type -> the event type the jamjet SDK knows.
_EVENT_NAMES = {
    "execution_started": "workflow_started",
    "execution_completed": "workflow_completed",
    "execution_failed": "workflow_failed",
    "execution_cancelled": "workflow_cancelled",
}
#: Record fields renamed for the SDK (per event type).
_FIELD_NAMES = {
    "workflow_started": {"input": "initial_input"},
    "workflow_completed": {"result": "final_state"},
}


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an RFC 3339 UTC time (the CLI prints these as text)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def execution_view(row: ExecutionRow, state: ExecutionState | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "execution_id": row.execution_id,
        "workflow_id": row.workflow_id,
        "workflow_version": row.workflow_version,
        "status": row.status,
        "error": row.error,
        "started_at": iso(row.created_at_ms),
        "updated_at": iso(row.updated_at_ms),
        "labels": {},
    }
    if state is not None:
        view["status"] = state.display_status
        view["initial_input"] = state.input
        view["current_state"] = state.data
        view["output"] = state.result if state.status == "completed" else None
        view["error"] = state.error
        view["completed_at"] = iso(state.ended_at_ms)
        view["segment"] = state.segment
        view["continued_as"] = state.continued_as
        view["pending_approvals"] = [n for n, _ in state.pending_approvals()]
    return view


def events_view(
    entries: Iterable[JournalEntry], labels: Labels | None = None
) -> list[dict[str, Any]]:
    """The events API's list: each record as :func:`event_view`, and a ``node_started``
    before each step's outcome; with a strategy's node ``labels``, its derived events after
    its nodes' records (:mod:`tether.server.strategy_events`).

    ``node_started`` (what the jamjet tools count and stream) is derived from the outcome,
    not journaled: the outcome knows who ran the step and for how long, and a record at the
    start would cost a commit per step. So it appears with the outcome, as Temporal's
    ActivityTaskStarted does, under the outcome's sequence number.
    """
    out: list[dict[str, Any]] = []
    for entry in entries:
        record = entry.record
        if isinstance(record, NodeCompleted | NodeFailed) and record.dispatch > 0:
            out.append(_started(entry.seq, record))
        event = event_view(entry)
        out.append(event)
        if labels:
            node_labels = labels.get(str(event.get("node_id", "")))
            if node_labels is not None and isinstance(record, NodeCompleted):
                event["kind"]["labels"] = dict(node_labels)
            out.extend(derived_events(entry, labels, event["created_at"]))
    return out


def _started(seq: int, record: NodeCompleted | NodeFailed) -> dict[str, Any]:
    at_ms = record.at_ms - record.duration_ms
    kind = {
        "type": "node_started", "node_id": record.node_id, "attempt": record.attempt,
        "dispatch": record.dispatch, "worker_id": record.worker_id or "local",
    }  # fmt: skip
    return {
        "sequence": seq, "kind": kind, "created_at": iso(at_ms), "node_id": record.node_id,
        "attempt": record.attempt, "derived": True,
    }  # fmt: skip


def event_view(entry: JournalEntry) -> dict[str, Any]:
    record = entry.record
    fields = msgspec.to_builtins(record, enc_hook=shown)  # a large value: its reference
    kind_type = _EVENT_NAMES.get(fields.pop("type"), record.type)
    at_ms = fields.pop("at_ms", None)
    for old, new in _FIELD_NAMES.get(kind_type, {}).items():
        if old in fields:
            fields[new] = fields.pop(old)
    # A call's facts sit beside the record's own fields, where the jamjet tools read them
    # (`jamjet inspect`: kind.input_tokens, kind.cost_usd ...).
    facts = fields.pop("facts", None) or {}
    kind = {"type": kind_type, **{k: v for k, v in facts.items() if k not in fields}, **fields}
    event: dict[str, Any] = {"sequence": entry.seq, "kind": kind, "created_at": iso(at_ms)}
    for key in ("node_id", "duration_ms", "attempt", "error"):
        if key in fields:
            event[key] = fields[key]
    return event
