"""What a node's outcome is recorded as: ``node_parked``, ``node_completed`` or
``node_failed``, and the settle of its work item that commits with it (I4, I11).

Example::

    record, settle = outcome_record(graph, outcome, now_ms(clock))
"""

from __future__ import annotations

import math
from typing import Any, Final

from tether.errors import MAX_RETRY_AFTER_SECS
from tether.persistence.contract import Settle
from tether.runtime.executor import NodeOutcome
from tether.runtime.graph import Graph
from tether.runtime.node_kinds import split_facts
from tether.runtime.records import NodeCompleted, NodeFailed, NodeParked, Record
from tether.runtime.scheduler import LOCAL_OWNER
from tether.runtime.tracebacks import bounded
from tether.runtime.typed_state import type_problem


def outcome_record(graph: Graph, out: NodeOutcome, at: int) -> tuple[Record, Settle]:
    """The record an outcome comes to (parked, completed or failed) and how it settles its
    work item; an output that does not fit the typed state fails the node, not retried."""
    wid = out.work_item_id
    if out.retry_after_secs is not None:
        until = at + _park_ms(out.retry_after_secs)
        parked = NodeParked(
            at_ms=at, node_id=out.node_id, dispatch=out.dispatch, attempt=out.attempt,
            not_before_ms=until, error=out.error,
        )  # fmt: skip
        return parked, Settle(wid, "parked", out.fence, until, out.error or None, at)
    output: Any = out.output
    facts: dict[str, Any] = {}
    if out.ok and out.node_id in graph.io_ids:
        output, facts = split_facts(out.output)
    problem = output_problem(graph, out.node_id, output) if out.ok else None
    if out.ok and problem is None:
        completed = NodeCompleted(
            at_ms=at,
            node_id=out.node_id,
            dispatch=out.dispatch,
            attempt=out.attempt,
            output=output,
            duration_ms=out.duration_ms,
            facts=facts,
            worker_id=_recorded(out.worker_id),
        )
        return completed, Settle(wid, "completed", out.fence, at_ms=at)
    failed = NodeFailed(
        at_ms=at,
        node_id=out.node_id,
        dispatch=out.dispatch,
        attempt=out.attempt,
        error=problem or out.error,
        error_type="TypeMismatch" if problem else out.error_type,
        retryable=False if problem else out.retryable,
        duration_ms=out.duration_ms,
        # Bounded again here: a remote peer's text is not trusted to be.
        traceback=bounded(out.traceback),
        worker_id=_recorded(out.worker_id),
        cause=out.cause,
    )
    # "failed" while the fold retries; the turn makes it "dead" when this was the last attempt.
    return failed, Settle(wid, "failed", out.fence, error=failed.error, at_ms=at)


def _recorded(worker_id: str) -> str:
    """The worker id a record keeps: none for the engine's own pool (the default, omitted)."""
    return "" if worker_id == LOCAL_OWNER else worker_id


#: Longest park recorded: a non-finite or absurd retry-after (from any tool or peer) must not
#: raise here, in the run's actor, nor overflow the journal's integers.
_MAX_PARK_MS: Final = int(MAX_RETRY_AFTER_SECS * 1000)


def _park_ms(retry_after_secs: float) -> int:
    if math.isnan(retry_after_secs):
        return _MAX_PARK_MS
    return int(min(max(retry_after_secs * 1000, 0.0), _MAX_PARK_MS))


def output_problem(graph: Graph, node_id: str, output: Any) -> str | None:
    """Why the output does not fit the typed state (each merged key, or the node's key)."""
    schema = graph.workflow.typed_schema()
    merging = node_id in graph.merge_ids and isinstance(output, dict)
    if not schema and not merging:
        return None  # an untyped state takes any value (the common case: no list to build)
    if node_id in graph.agent_ids:
        return None  # its calls' outputs go to its transcript; its answer is checked there
    if merging:
        if not all(isinstance(k, str) for k in output):
            return "a whole-state step's output must have string keys (state keys)"
        writes = list(output.items())
    else:
        writes = [(graph.state_keys[node_id], output)]
    for key, value in writes:
        problem = type_problem(schema, key, value)
        if problem is not None:
            return problem
    return None
