"""Properties of the agent loop over generated model answers (I2, I12): whatever the model
says (allowed tools, tools off the list, tools that fail, plain answers), replaying the journal
gives the live state, no conversation is sent to the provider twice, no refused tool runs, and
every allowed call runs exactly once."""

from __future__ import annotations

import tempfile
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.errors import NonRetryableError
from tether.ir import compile_yaml_text
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

AGENT = """
workflow: {id: prop, version: "1"}
nodes:
  work: {type: agent, model: gpt-4o-mini, prompt: "go", tools: [ok, broken],
         budget: {max_iterations: 20}, output_key: answer, next: end}
"""

_call = st.tuples(st.sampled_from(["ok", "broken", "forbidden"]), st.integers(0, 9))
_turn = st.lists(_call, min_size=1, max_size=3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.lists(_turn, max_size=4))
def test_any_model_answers_replay_to_the_live_state_and_send_nothing_twice_I2_I12(
    turns: list[list[tuple[str, int]]],
) -> None:
    ran: list[tuple[str, int]] = []

    @tool
    async def ok(n: int) -> int:
        ran.append(("ok", n))
        return n * 2

    @tool
    async def broken(n: int) -> int:
        ran.append(("broken", n))
        raise NonRetryableError(f"broken {n}")

    @tool
    async def forbidden(n: int) -> int:
        ran.append(("forbidden", n))
        return n

    script: list[Any] = [
        FakeReply(tool_calls=tuple(FakeToolCall(name, {"n": n}) for name, n in turn))
        for turn in turns
    ]
    script.append(FakeReply("done"))

    async def run() -> None:
        with FakeModelServer(script, api_key="k") as server, tempfile.TemporaryDirectory() as d:
            kinds = AgentKinds(env=server.env("k"))
            tools = [ok, broken, forbidden]
            async with Runtime(f"sqlite:///{d}/p.db", tools=tools, node_kinds=kinds) as rt:
                r = await rt.start(rt.register(compile_yaml_text(AGENT, "p")), {})
                assert (await r.result())["answer"] == "done"
                await check_replay(rt, r.id)
                journal = await rt.journal(r.id)
            assert server.sent_twice() == []
            assert len(server.requests) == len(turns) + 1
        allowed = [c for turn in turns for c in turn if c[0] != "forbidden"]
        assert ran == allowed  # each allowed call once, in order; no refused call ran
        refused = [e for e in journal if e.type == "policy_violation"]
        assert len(refused) == sum(c[0] == "forbidden" for turn in turns for c in turn)

    anyio.run(run)
