"""Child workflows of a code-first body: started after the turn that asks for them commits,
their end told to the parent as an event (I1, I3).

``await ctx.child(wf, input)`` is two durable calls: a recorded value, the child's spec (its
execution id, workflow and input), then a wait for the event ``tether.child:<child id>``.
Once the turn holding the spec is durable the parent's actor starts the child, under an id
made from the parent's place (``<root>~child<segment>.<position>``: a retried start finds
the run it started); when the child ends, its actor sends the parent that event (once: the
event id is the child's). Recovery re-derives both: a parent waiting on a child that does
not exist starts it, one whose child has ended is told again (applied once).

Example (what the parent's actor does after a turn commits)::

    for spec in children_asked(records):
        services.children.start(spec)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from tether.runtime.code_first.fold import position_of
from tether.runtime.records import NodeCompleted, Record
from tether.runtime.state import ExecutionState

#: The correlation key prefix of a child's end (events from outside may not use ``tether.``).
CHILD_KEY = "tether.child:"
_CHILD_ID = re.compile(r"^(?P<parent>.+)~child\d+\.\d+$")


class ChildFailed(Exception):
    """A child workflow ended without a result (failed, cancelled, over its limits)."""

    def __init__(self, execution_id: str, status: str, error: str | None) -> None:
        self.execution_id = execution_id
        self.status = status
        self.error = error
        super().__init__(f"child workflow {execution_id} ended {status}: {error or status}")


class ChildRuns(Protocol):
    """What the runtime does for a parent's actor (tether.runtime.child_runs)."""

    def start(self, spec: dict[str, Any]) -> None: ...

    def ensure(self, spec: dict[str, Any]) -> None: ...

    def ended(self, child_root: str, state: ExecutionState) -> None: ...


def child_id(state: ExecutionState, position: int) -> str:
    """The id of the child asked for at ``position`` of this segment's body."""
    root = state.root_execution_id or state.execution_id
    return f"{root}~child{state.segment}.{position}"


def parent_of(child_root: str) -> str | None:
    """The parent's first execution id, for an id made by :func:`child_id` (else None)."""
    if "~child" not in child_root:  # every run's end asks: most are nobody's child
        return None
    found = _CHILD_ID.match(child_root)
    return found.group("parent") if found else None


def children_asked(records: Iterable[Record]) -> Iterator[dict[str, Any]]:
    """The specs a turn's records ask to start."""
    for record in records:
        if (
            isinstance(record, NodeCompleted)
            and record.dispatch == 0
            and record.node_id.startswith("@child:")
            and isinstance(record.output, dict)
        ):
            yield record.output


def children_awaited(state: ExecutionState) -> list[dict[str, Any]]:
    """The specs of the children this state waits for (for recovery to re-derive)."""
    waited = {
        wait.correlation_key[len(CHILD_KEY) :]
        for wait in state.waits.values()
        if wait.correlation_key is not None and wait.correlation_key.startswith(CHILD_KEY)
    }
    out = []
    for chunk in state.calls.values():
        for node_id, done in chunk.items():
            spec = done.value
            if (
                node_id.startswith("@child:")
                and position_of(node_id) is not None
                and isinstance(spec, dict)
                and spec.get("execution_id") in waited
            ):
                out.append(spec)
    return out


def end_payload(state: ExecutionState) -> dict[str, Any]:
    """What the parent's wait gets when the child ends."""
    return {"status": state.status, "result": state.result, "error": state.error}
