"""A tool that needs a person's approval: an agent's call of it pauses the run, the decision is
journaled, an approved call runs once, a rejected one never runs and the model is told. Real
runtime on a SQLite file, the fake model server, real @tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.errors import ApproverNotAllowed
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing import VirtualClock, check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.anyio

AGENT = """
workflow: {{id: refunds, version: "1"}}
models:
  smart: {{provider: openai, model: gpt-4o-mini}}
nodes:
  work:
    type: agent
    model: smart
    instructions: "Handle refunds."
    prompt: "{{{{ state.question }}}}"
    tools: [refund, lookup]
    {extra}
    output_key: answer
    next: end
"""


def _tools(effects: list[str]) -> list[Any]:
    @tool(requires_approval=True)
    async def refund(order: str, amount: int) -> str:
        """Refund an order."""
        effects.append(f"refund {order} {amount}")
        return "refunded"

    @tool
    async def lookup(order: str) -> str:
        """Look an order up."""
        effects.append(f"lookup {order}")
        return "paid 30"

    return [refund, lookup]


def _runtime(db: Path, server: FakeModelServer, tools: list[Any]) -> Runtime:
    return Runtime(f"sqlite:///{db}", tools=tools, node_kinds=AgentKinds(env=server.env("k")))


async def _paused(rt: Runtime, run_id: str) -> None:
    with anyio.fail_after(10):
        while (await rt.get_execution(run_id)).status != "paused":
            await anyio.sleep(0)


def _script(answer: str) -> list[FakeReply]:
    return [
        FakeReply(tool_calls=(FakeToolCall("refund", {"order": "A7", "amount": 30}, id="r1"),)),
        FakeReply(answer),
    ]


async def test_an_approved_call_runs_once_after_the_decision_and_survives_a_restart_I2(
    tmp_path: Path,
) -> None:
    effects: list[str] = []
    db = tmp_path / "rt.db"
    with FakeModelServer(_script("Refunded."), api_key="k") as server:
        async with _runtime(db, server, _tools(effects)) as rt:
            wf = rt.register(compile_yaml_text(AGENT.format(extra=""), "a.yaml"))
            run = await rt.start(wf, {"question": "Refund A7"})
            await _paused(rt, run.id)
            [pending] = await rt.pending_approvals()
        assert effects == []  # nothing runs before a person says yes
        assert pending.node_id == "work" and "'refund'" in pending.description
        assert '"order":"A7"' in pending.description
        async with _runtime(db, server, _tools(effects)) as rt:  # the pause is in the journal
            await rt.approve(run.id, "approved", "alice@example.com", comment="ok")
            assert (await rt.wait(run.id, timeout=10)).data["answer"] == "Refunded."
            journal = await rt.journal(run.id)
            await check_replay(rt, run.id)
    assert effects == ["refund A7 30"]
    [decision] = [e.record for e in journal if e.type == "approval_received"]
    assert (decision.decision, decision.user_id) == ("approved", "alice@example.com")  # type: ignore[union-attr]
    told = server.requests[1].body["messages"]
    assert any(m.get("role") == "tool" and m.get("content") == "refunded" for m in told)


async def test_a_rejected_call_never_runs_and_the_model_is_told_who_and_why(
    tmp_path: Path,
) -> None:
    effects: list[str] = []
    extra = "requires_approval: [lookup]"
    script = [
        FakeReply(tool_calls=(FakeToolCall("lookup", {"order": "A7"}, id="l1"),)),
        FakeReply("I could not look it up."),
    ]
    with FakeModelServer(script, api_key="k") as server:
        async with _runtime(tmp_path / "rt.db", server, _tools(effects)) as rt:
            wf = rt.register(compile_yaml_text(AGENT.format(extra=extra), "a.yaml"))
            run = await rt.start(wf, {"question": "Look up A7"})
            await _paused(rt, run.id)
            await rt.approve(run.id, "rejected", "bob@example.com", comment="not today")
            assert (await run.result(timeout=10))["answer"] == "I could not look it up."
            await check_replay(rt, run.id)
    assert effects == []
    told = server.requests[1].body["messages"]
    [result] = [m for m in told if m.get("role") == "tool"]
    assert "bob@example.com rejected it: not today" in result["content"]


async def test_only_the_agents_approvers_may_decide(tmp_path: Path) -> None:
    effects: list[str] = []
    extra = 'approvers: ["role:finance"]'
    with FakeModelServer(_script("Refunded."), api_key="k") as server:
        async with _runtime(tmp_path / "rt.db", server, _tools(effects)) as rt:
            wf = rt.register(compile_yaml_text(AGENT.format(extra=extra), "a.yaml"))
            run = await rt.start(wf, {"question": "Refund A7"})
            await _paused(rt, run.id)
            with pytest.raises(ApproverNotAllowed):
                await rt.approve(run.id, "approved", "mallory@example.com")
            assert effects == []
            await rt.approve(run.id, "approved", "carol@example.com", roles=["finance"])
            assert (await run.result(timeout=10))["answer"] == "Refunded."
    assert effects == ["refund A7 30"]


async def test_requires_approval_naming_a_tool_the_agent_lacks_is_refused(tmp_path: Path) -> None:
    with FakeModelServer([], api_key="k") as server:
        async with _runtime(tmp_path / "rt.db", server, _tools([])) as rt:
            text = AGENT.format(extra="requires_approval: [delete_db]")
            with pytest.raises(WorkflowInvalid) as refused:
                rt.register(compile_yaml_text(text, "a.yaml"))
    assert "delete_db" in str(refused.value) and "work" in str(refused.value)


async def test_an_approval_covers_one_call_never_a_later_one_with_the_same_id(
    tmp_path: Path,
) -> None:
    """Providers may number calls per reply (Gemini's call_0): the next answer's call with
    the same id waits for its own decision."""
    effects: list[str] = []
    script = [
        FakeReply(tool_calls=(FakeToolCall("refund", {"order": "A7", "amount": 30}, id="c0"),)),
        FakeReply(tool_calls=(FakeToolCall("refund", {"order": "B9", "amount": 999}, id="c0"),)),
        FakeReply("Both refunded."),
    ]
    with FakeModelServer(script, api_key="k") as server:
        async with _runtime(tmp_path / "rt.db", server, _tools(effects)) as rt:
            wf = rt.register(compile_yaml_text(AGENT.format(extra=""), "a.yaml"))
            run = await rt.start(wf, {"question": "Refund A7 and B9"})
            await _paused(rt, run.id)
            await rt.approve(run.id, "approved", "alice@example.com")
            with anyio.fail_after(10):
                while len(effects) < 1:
                    await anyio.sleep(0)
            await _paused(rt, run.id)  # the second refund waits for its own decision
            assert effects == ["refund A7 30"]
            [pending] = await rt.pending_approvals()
            assert '"order":"B9"' in pending.description
            await rt.approve(run.id, "rejected", "bob@example.com", comment="too much")
            assert (await run.result(timeout=10))["answer"] == "Both refunded."
            await check_replay(rt, run.id)
    assert effects == ["refund A7 30"]


async def test_an_agents_approval_timeout_ends_the_wait_and_the_call_never_runs_I2(
    tmp_path: Path,
) -> None:
    """The agent's own approval_timeout: no decision in time is a no, told to the model."""
    effects: list[str] = []
    clock = VirtualClock()
    with FakeModelServer(_script("Nobody approved it."), api_key="k") as server:
        kinds = AgentKinds(env=server.env("k"))
        async with Runtime(
            f"sqlite:///{tmp_path / 'rt.db'}", tools=_tools(effects), node_kinds=kinds, clock=clock
        ) as rt:
            text = AGENT.format(extra="approval_timeout: 1h")
            run = await rt.start(rt.register(compile_yaml_text(text, "a.yaml")), {"question": "?"})
            await _paused(rt, run.id)
            [pending] = await rt.pending_approvals()
            assert pending.timeout_at_ms is not None
            clock.advance(3600)
            assert (await run.result(timeout=10))["answer"] == "Nobody approved it."
            await check_replay(rt, run.id)
    assert effects == []
    told = server.requests[1].body["messages"]
    [result] = [m for m in told if m.get("role") == "tool"]
    assert "no decision came within the approval timeout" in result["content"]
