"""Human approval: paused runs, decisions in the journal, routing, timeouts, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tether import (
    AmbiguousApproval,
    ApprovalNotPending,
    ExecutionFailedError,
    ExecutionNotRunning,
    InvalidInput,
    Runtime,
    tool,
)
from tether.ir import compile_yaml_text
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


@tool
async def pay(amount: int) -> str:
    return f"paid {amount}"


@tool
async def refund(amount: int) -> str:
    return f"refunded {amount}"


ROUTED = """
workflow:
  id: payment
  version: "1"
  start: review
  state_schema: {{amount: {{type: integer}}, note: {{type: string, default: ""}}}}
nodes:
  review:
    type: human_approval
    description: Approve the payment?
    patchable: [note, amount]
    {extra}
    next:
      - {{to: pay, when: "review.decision == 'approved'"}}
      - {{to: refund}}
  pay: {{type: tool, tool: pay, input: {{amount: $amount}}, next: end}}
  refund: {{type: tool, tool: refund, input: {{amount: $amount}}, next: end}}
"""

SINGLE = """
workflow: {id: single, version: "1", start: review, state_schema: {amount: {type: integer}}}
nodes:
  review: {type: human_approval, description: "Go?", next: pay}
  pay: {type: tool, tool: pay, input: {amount: $amount}, next: end}
"""


def routed(extra: str = "") -> str:
    return ROUTED.format(extra=extra)


async def paused(rt: Runtime, run_id: str) -> None:
    with anyio.fail_after(10):
        while (await rt.get_execution(run_id)).status != "paused":
            await anyio.sleep(0)


async def test_a_run_pauses_until_approved_and_records_who_and_when(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[pay, refund], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(routed(), "p.yaml")), {"amount": 50_000})
        await paused(rt, run.id)
        [pending] = await rt.pending_approvals()
        assert (pending.execution_id, pending.node_id, pending.description) == (
            run.id,
            "review",
            "Approve the payment?",
        )
        state = await rt.approve(
            run.id, "approved", "alice@example.com", comment="ok", state_patch={"note": "vip"}
        )
        assert state.data["review"] == {
            "decision": "approved",
            "user_id": "alice@example.com",
            "comment": "ok",
        }
        result = await run.result(timeout=10)
        assert (result["pay"], result["note"]) == ("paid 50000", "vip")
        assert await rt.pending_approvals() == []
        entries = await rt.journal(run.id)
        [decision] = [e.record for e in entries if e.type == "approval_received"]
        assert (decision.user_id, decision.at_ms) == ("alice@example.com", int(clock.now() * 1000))  # type: ignore[union-attr]
        assert (await rt.get_execution(run.id)).status == "completed"
        await check_replay(rt, run.id)


async def test_a_rejection_routes_on_the_decision(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay, refund]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(routed(), "p.yaml")), {"amount": 7})
        await paused(rt, run.id)
        await rt.approve(run.id, "rejected", "bob", comment="too much")
        assert (await run.result(timeout=10))["refund"] == "refunded 7"


async def test_a_rejection_with_no_route_for_it_fails_the_run(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(SINGLE, "s.yaml")), {"amount": 7})
        await paused(rt, run.id)
        await rt.approve(run.id, "rejected", "bob", comment="no")
        with pytest.raises(ExecutionFailedError, match="rejected at node 'review' by bob: no"):
            await run.result(timeout=10)


async def test_wrong_decisions_are_refused_and_change_nothing(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(SINGLE, "s.yaml")), {"amount": 7})
        with pytest.raises(InvalidInput, match="decision must be one of approved, rejected"):
            await rt.approve(run.id, "yes", "bob")
        with pytest.raises(InvalidInput, match="user_id"):
            await rt.approve(run.id, "approved", " ")
        await paused(rt, run.id)
        with pytest.raises(ApprovalNotPending, match="no approval is pending at node 'pay'"):
            await rt.approve(run.id, "approved", "bob", node_id="pay")
        with pytest.raises(InvalidInput, match="state_patch"):
            await rt.approve(run.id, "approved", "bob", state_patch={"amount": "lots"})
        assert [e.type for e in await rt.journal(run.id)].count("approval_received") == 0
        await rt.approve(run.id, "approved", "bob")
        with pytest.raises((ApprovalNotPending, ExecutionNotRunning)):
            await rt.approve(run.id, "approved", "bob")  # twice: the first one decided it
        await run.result(timeout=10)
        with pytest.raises(ExecutionNotRunning):
            await rt.approve(run.id, "approved", "bob")
        assert [e.type for e in await rt.journal(run.id)].count("approval_received") == 1


async def test_two_pending_approvals_need_a_node_id(db_url: str) -> None:
    text = """
workflow: {id: two, version: "1", start: both, state_schema: {amount: {type: integer}}}
nodes:
  both: {type: parallel, branches: [legal, finance]}
  legal: {type: human_approval, next: done}
  finance: {type: human_approval, next: done}
  done: {type: join, next: end}
"""
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(text, "t.yaml")), {"amount": 1})
        await paused(rt, run.id)
        with pytest.raises(AmbiguousApproval, match="'legal', 'finance'"):
            await rt.approve(run.id, "approved", "carol")
        await rt.approve(run.id, "approved", "carol", node_id="legal")
        assert (await rt.get_execution(run.id)).status == "paused"
        await rt.approve(run.id, "approved", "dave", node_id="finance")
        await run.result(timeout=10)


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ("timeout: 1h\n    fallback: refund", "refunded 3"),
        ("timeout: 1h\n    on_timeout: approve", "paid 3"),
        ("timeout: 1h\n    on_timeout: fail", "timed out"),
    ],
)
async def test_an_approval_timeout_takes_its_fallback_or_outcome(
    db_url: str, extra: str, outcome: str
) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[pay, refund], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(routed(extra), "p.yaml")), {"amount": 3})
        await until(lambda: clock.sleepers > 0)
        clock.advance(3600)
        state = await rt.wait(run.id, timeout=10)
        if outcome == "timed out":
            assert state.status == "failed" and "timed out" in (state.error or "")
        else:
            assert outcome in (state.data.get("pay"), state.data.get("refund"))
        [decision] = [e.record for e in await rt.journal(run.id) if e.type == "approval_received"]
        assert decision.user_id == "tether:timeout"  # type: ignore[union-attr]
        await check_replay(rt, run.id)


async def test_a_pending_approval_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    async with Runtime(url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(SINGLE, "s.yaml")), {"amount": 9})
        await paused(rt, run.id)
    async with Runtime(url, tools=[pay]) as rt:
        assert (await rt.get_execution(run.id)).status == "paused"
        assert [p.node_id for p in await rt.pending_approvals()] == ["review"]
        await rt.approve(run.id, "approved", "erin")
        assert (await rt.handle(run.id).result(timeout=10))["pay"] == "paid 9"
        entries = await rt.journal(run.id)
        assert [e.type for e in entries].count("approval_received") == 1
        # A pending approval holds no work item and no lease (and "pay", completed on the
        # in-process pool, left none either).
        assert await rt.store.list_work_items(execution_id=run.id) == []
