"""An agent loop carried across continue-as-new (I9): the roll waits for the call in flight,
the next segment starts with the loop's transcript and spending, and nothing is sent twice."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_text
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.anyio

AGENT = """
workflow: {id: rolling, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  work:
    type: agent
    model: smart
    prompt: "{{ state.question }}"
    tools: [slow_lookup]
    budget: {max_iterations: 3}
    output_key: answer
    next: end
"""


async def test_a_roll_mid_loop_carries_the_transcript_and_spending_into_the_next_segment_I9(
    tmp_path: Path,
) -> None:
    started, gate = anyio.Event(), anyio.Event()

    @tool(inline=False)
    async def slow_lookup(key: str) -> str:
        """Look a key up, slowly."""
        started.set()
        await gate.wait()
        return f"value of {key}"

    script = [
        FakeReply(tool_calls=(FakeToolCall("slow_lookup", {"key": "k1"}, id="c1"),),
                  input_tokens=100, output_tokens=10),
        FakeReply("k1 is value of k1", input_tokens=150, output_tokens=8),
    ]  # fmt: skip
    with FakeModelServer(script, api_key="k") as server:
        kinds = AgentKinds(env=server.env("k"))
        async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[slow_lookup],
                           node_kinds=kinds) as rt:  # fmt: skip
            run = await rt.start(rt.register(compile_yaml_text(AGENT, "a")), {"question": "k1?"})
            with anyio.fail_after(10):
                await started.wait()  # the first model call is done, the tool in flight
            await rt.continue_as_new(run.id, reason="long loop")
            gate.set()
            assert (await run.result(timeout=10))["answer"] == "k1 is value of k1"
            nxt = (await rt.state(run.id)).continued_as
            assert nxt is not None
            second = await rt.state(nxt)
            first_journal = [e.type for e in await rt.journal(run.id)]
            await check_replay(rt, nxt)
    assert first_journal[-1] == "segment_boundary"
    assert first_journal.count("node_completed") == 2  # the model call and the tool call
    assert second.spent_tokens == 100 + 10 + 150 + 8  # spending carried over, then added to
    assert len(server.requests) == 2 and server.sent_twice() == []
    last = server.requests[1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool"]
    assert last[2]["content"] == "value of k1"
