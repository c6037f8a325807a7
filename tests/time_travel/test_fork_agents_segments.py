"""Forks of agent runs and of continued segments: a fork mid-loop sends none of the model
and tool calls committed by its record (I12), and a fork of a later segment runs as a run
of its own whose next segments are named after it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.code_first import flows
from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_text
from tether.runtime.planner import SEGMENT_MARK
from tether.runtime.records import NodeCompleted, NodeScheduled, SegmentStarted
from tether.runtime.time_travel import ForkRefused
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall, LoggedRequest

from .travel_flows import CALLS, bump

pytestmark = pytest.mark.anyio

AGENT = """
workflow: {id: forked_agent, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  work:
    type: agent
    model: smart
    prompt: "{{ state.question }}"
    tools: [lookup]
    budget: {max_iterations: 4}
    output_key: answer
    next: end
"""

LOOP = """
workflow:
  id: loop
  version: "1"
  start: tick
  state_schema: {n: {type: integer}}
  continue_as_new: {max_records: 12}
nodes:
  tick: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: more}
  more:
    type: branch
    cases: [{when: "n < 30", to: tick}]
    default: end
"""

LOOKUPS: Counter[str] = Counter()


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    LOOKUPS[key] += 1
    return f"value of {key}"


def _model(request: LoggedRequest) -> FakeReply:
    """A tool call for the question, then an answer from the tool's result."""
    messages = request.body["messages"]
    if messages[-1]["role"] == "user":
        call = FakeToolCall("lookup", {"key": "k1"}, id="c1")
        return FakeReply(tool_calls=(call,), input_tokens=10, output_tokens=2)
    return FakeReply("done: " + messages[-1]["content"], input_tokens=20, output_tokens=3)


def _calls_open_at(journal: list[Any], at: int) -> tuple[list[list[Any]], int]:
    """The model calls (their messages) and the number of tool calls handed out in the
    origin whose outcome is not in records 1..at: what a fork at ``at`` must send."""
    scheduled: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    for entry in journal:
        rec = entry.record
        if isinstance(rec, NodeScheduled):
            scheduled[rec.dispatch] = rec.input
        elif isinstance(rec, NodeCompleted) and entry.seq <= at:
            done.add(rec.dispatch)
    open_calls = [i for d, i in sorted(scheduled.items()) if d not in done]
    models = [i["messages"] for i in open_calls if i["call"] == "model"]
    return models, sum(1 for i in open_calls if i["call"] == "tool")


async def test_a_fork_of_an_agent_run_mid_loop_sends_no_committed_call_again_I12(
    tmp_path: Path,
) -> None:
    LOOKUPS.clear()
    with FakeModelServer(_model, api_key="k") as server:
        kinds = AgentKinds(env=server.env("k"))
        async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[lookup],
                           node_kinds=kinds) as rt:  # fmt: skip
            wf = rt.register(compile_yaml_text(AGENT, "agent.yaml"))
            run = await rt.start(wf, {"question": "k1?"})
            origin = await run.result(timeout=10)
            assert origin["answer"] == "done: value of k1"
            journal = await rt.journal(run.id)
            origin_spent = (await rt.state(run.id)).spent_tokens
            assert len(server.requests) == 2 and LOOKUPS["k1"] == 1
            for at in range(1, len(journal)):  # the last record ends the run
                sent, looked_up = len(server.requests), LOOKUPS["k1"]
                fork = await rt.fork(run.id, at_seq=at)
                result = await rt.handle(fork.execution_id).result(timeout=10)
                assert result == origin, at
                models, tools = _calls_open_at(journal, at)
                new = server.requests[sent:]
                # Exactly the calls not committed by `at`, each once, the same conversation
                # the origin sent: a call whose result is in the copied records is not sent.
                sent_roles = [[m["role"] for m in r.body["messages"]] for r in new]
                assert sent_roles == [[m["role"] for m in ms] for ms in models], at
                assert LOOKUPS["k1"] - looked_up == tools, at
                state = await rt.state(fork.execution_id)
                assert state.spent_tokens == origin_spent, at  # copied spending + new calls
                assert state.forked_from == (run.id, at)
                await check_replay(rt, fork.execution_id)
    assert server.problems == []


async def _segments(rt: Runtime, first: str) -> list[str]:
    segments = [first]
    while (nxt := (await rt.state(segments[-1])).continued_as) is not None:
        segments.append(nxt)
    return segments


async def test_a_fork_at_every_record_of_a_later_segment_ends_as_the_origin_did_I2_I9(
    tmp_path: Path,
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[bump]) as rt:
        wf = rt.register(compile_yaml_text(LOOP, "loop.yaml"))
        run = await rt.start(wf, {"n": 0})
        assert (await run.result(timeout=20))["n"] == 30
        segments = await _segments(rt, run.id)
        assert len(segments) >= 3
        second = segments[1]
        journal = await rt.journal(second)
        assert journal[0].type == "segment_started" and journal[-1].type == "segment_boundary"
        for at in range(1, len(journal)):  # the boundary ends this segment: refused below
            CALLS.clear()
            fork = await rt.fork(second, at_seq=at)
            assert SEGMENT_MARK not in fork.execution_id
            assert (await rt.handle(fork.execution_id).result(timeout=20))["n"] == 30, at
            first = (await rt.journal(fork.execution_id))[0].record
            assert isinstance(first, SegmentStarted)
            assert (first.forked_from, first.forked_at_seq) == (second, at)
            assert first.root_execution_id == fork.execution_id and first.segment == 1
            assert await rt.fork_origin(fork.execution_id) == (second, at)
            # Its own next segments are named after it, never after the origin's root.
            chain = await _segments(rt, fork.execution_id)
            assert all(s.startswith(f"{fork.execution_id}{SEGMENT_MARK}") for s in chain[1:])
            assert (await rt.get_execution(chain[-1])).status == "completed"
            for eid in chain:
                await check_replay(rt, eid)
        # The origin's own segments are untouched by the forks.
        assert await _segments(rt, run.id) == segments
        with pytest.raises(ForkRefused, match=r"ends the run \(continued\)"):
            await rt.fork(second, at_seq=len(journal))


async def test_a_fork_of_a_code_first_segment_starts_the_body_from_its_input(
    tmp_path: Path,
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'c.db'}", workflows=[flows.rounds]) as rt:
        run = await rt.start(flows.rounds, {"round": 1, "upto": 4, "total": 0})
        assert await run.result(timeout=10) == {"total": 10, "rounds": 4}
        segments = await _segments(rt, run.id)
        third = segments[2]
        journal = await rt.journal(third)
        for at in range(1, len(journal)):
            flows.RAN.clear()
            fork = await rt.fork(third, at_seq=at)
            result = await rt.handle(fork.execution_id).result(timeout=10)
            assert result == {"total": 10, "rounds": 4}, at
            # Round 3's step runs again only if its result is not in records 1..at.
            done = any(
                isinstance(e.record, NodeCompleted) and e.record.dispatch > 0 for e in journal[:at]
            )
            expected = ([] if done else ["add(3,3)"]) + ["add(6,4)"]
            ran = list(flows.RAN)
            assert ran == expected, at
            for eid in await _segments(rt, fork.execution_id):
                await check_replay(rt, eid)
