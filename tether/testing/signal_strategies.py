"""Hypothesis strategies for what happens to a run from outside: external events, approvals,
and time passing; and for tools that fail.

``signals(workflow)`` draws sequences for the events the workflow's wait nodes wait for,
decisions on its approvals, and advances of a virtual clock; :func:`send_signals` plays one
against a run, taking refusals (an approval when none is pending, an event for a finished
run) as the answers they are. ``tool_failures()`` draws how each call of a tool goes, and
:func:`failing_as` wraps a tool to go that way.

Example::

    @given(steps=tst.signals(payment_wf))
    async def test_any_order(steps): ...
        await send_signals(tether_runtime, run.id, steps, virtual_clock)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from hypothesis import strategies as st

from tether.errors import (
    AmbiguousApproval,
    ApprovalNotPending,
    ExecutionNotRunning,
    InvalidInput,
    NonRetryableError,
    RateLimited,
)
from tether.ir.types import HumanApprovalKind, WaitKind, Workflow
from tether.runtime.tools import Tool
from tether.testing.clock import VirtualClock
from tether.testing.runtime_under_test import RuntimeUnderTest


@dataclass(frozen=True)
class Event:
    """An external event for ``key`` (``event_id`` repeated: a retried delivery)."""

    key: str
    payload: Any
    event_id: str


@dataclass(frozen=True)
class Decision:
    """A person's decision on the pending approval."""

    decision: str
    user_id: str = "tester@example.com"


@dataclass(frozen=True)
class Advance:
    """Time passing on the virtual clock."""

    seconds: float


Signal = Event | Decision | Advance


def signals(workflow: Workflow, *, max_size: int = 6) -> st.SearchStrategy[list[Signal]]:
    """Sequences of events (for the keys the workflow's wait nodes name, delivered once or
    again), decisions (when it has approvals) and clock advances (seconds to days)."""
    keys = sorted(
        {n.kind.correlation_key for n in workflow.nodes.values()
         if isinstance(n.kind, WaitKind) and n.kind.correlation_key}
    )  # fmt: skip
    has_approval = any(isinstance(n.kind, HumanApprovalKind) for n in workflow.nodes.values())
    kinds: list[st.SearchStrategy[Signal]] = [
        st.sampled_from([1, 60, 3600, 86_400, 3 * 86_400]).map(Advance)
    ]
    if keys:
        kinds.append(
            st.builds(
                Event,
                st.sampled_from(keys),
                st.none() | st.dictionaries(st.sampled_from(["ref", "amount"]), st.integers(0, 99)),
                st.sampled_from(["ev-1", "ev-2", "ev-3"]),
            )
        )
    if has_approval:
        kinds.append(st.builds(Decision, st.sampled_from(["approved", "rejected"])))
    return st.lists(st.one_of(kinds), max_size=max_size)


#: What a signal can be told that is an answer, not a failure (a random order meets them).
REFUSALS = (ApprovalNotPending, AmbiguousApproval, ExecutionNotRunning, InvalidInput)


async def send_signals(
    rt: RuntimeUnderTest, execution_id: str, steps: Sequence[Signal], clock: VirtualClock
) -> list[str]:
    """Play ``steps`` against the run; returns what each came to (``ok`` or the refusal)."""
    said = []
    for step in steps:
        try:
            if isinstance(step, Event):
                await rt.send_event(execution_id, step.key, step.payload, event_id=step.event_id)
            elif isinstance(step, Decision):
                await rt.approve(execution_id, step.decision, step.user_id)
            else:
                clock.advance(step.seconds)
                await anyio.lowlevel.checkpoint()
            said.append("ok")
        except REFUSALS as exc:
            said.append(type(exc).__name__)
    return said


# -- tool failures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolOutcome:
    """How one call of a tool goes: ``ok``, ``transient`` (retried), ``permanent`` (not
    retried) or ``rate_limited`` (parked for ``retry_after`` seconds)."""

    kind: str
    retry_after: float = 0.0


def tool_failures(*, max_calls: int = 6) -> st.SearchStrategy[list[ToolOutcome]]:
    """How a tool's successive calls go; shrinks to every call succeeding."""
    outcome = st.one_of(
        st.just(ToolOutcome("ok")),
        st.just(ToolOutcome("transient")),
        st.just(ToolOutcome("permanent")),
        st.sampled_from([0, 5, 60]).map(lambda s: ToolOutcome("rate_limited", s)),
    )
    return st.lists(outcome, max_size=max_calls)


def failing_as(tool: Tool, outcomes: Sequence[ToolOutcome]) -> Tool:
    """``tool`` whose first calls go as ``outcomes`` say (then it works): the same name,
    parameters and schema, so the workflow and the model see the same tool."""
    plan = list(outcomes)

    @functools.wraps(tool.fn)
    async def planned(**kwargs: Any) -> Any:
        step = plan.pop(0) if plan else ToolOutcome("ok")
        if step.kind == "transient":
            raise ConnectionError(f"{tool.name}: planned transient failure")
        if step.kind == "permanent":
            raise NonRetryableError(f"{tool.name}: planned permanent failure")
        if step.kind == "rate_limited":
            raise RateLimited(step.retry_after, f"{tool.name}: planned rate limit")
        if tool.is_async:
            return await tool.fn(**kwargs)
        return await anyio.to_thread.run_sync(functools.partial(tool.fn, **kwargs))

    return dataclasses.replace(tool, fn=planned, is_async=True)
