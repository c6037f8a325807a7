"""Strategy agents compiled from Tether YAML run against the fake model server: each
strategy's node sequence, the ``limit_reached`` halts (rounds run out, cost with the next
call's projection, timeout) with the best answer so far, and replay equal to live (I2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from strategy_flows import strategy_flow

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.runtime.records import StrategyLimitReached
from tether.testing import check_replay
from tether.testing.clock import VirtualClock
from tether.testing.fake_models import FakeModelServer, FakeReply, LoggedRequest

pytestmark = pytest.mark.anyio
KEY = "test-key"


def reply(value: Any, **tokens: int) -> FakeReply:
    return FakeReply(value if isinstance(value, str) else json.dumps(value), **tokens)


async def run_strategy(
    tmp: Path,
    strategy: str,
    script: list[FakeReply] | Callable[[LoggedRequest], FakeReply],
    clock: VirtualClock | None = None,
    during: Callable[[FakeModelServer, Runtime], Any] | None = None,
    **agent: Any,
) -> tuple[Any, list[Any], FakeModelServer]:
    """Run ``strategy`` to its end: its final state, its journal's records, the server."""
    with FakeModelServer(script, api_key=KEY) as models:
        kinds = AgentKinds(env=models.env(KEY))
        extra = {"clock": clock} if clock is not None else {}
        async with Runtime(f"sqlite:///{tmp / 'rt.db'}", node_kinds=kinds, **extra) as rt:
            run = await rt.start(rt.register(strategy_flow(strategy, **agent)), {"topic": "tea"})
            if during is not None:
                await during(models, rt)
            with anyio.fail_after(30):
                state = await rt.wait(run.id, timeout=30)
            await check_replay(rt, run.id)
            records = [e.record for e in await rt.journal(run.id)]
    assert models.sent_twice() == []
    return state, records, models


def path_of(records: list[Any]) -> list[str]:
    return [r.node_id for r in records if r.type == "node_completed"]


EXPECTED = {
    "react": (
        {"max_iterations": 2},
        [reply({"thought": "look", "action": "web_search", "input": {"q": "tea"}}),
         reply({"observation": "a drink", "progress": "half"}),
         reply({"thought": "enough", "action": "FINISH"}), reply("Tea is a drink.")],
        ["__think_0__", "__react_guard_0__", "__observe_0__", "__think_1__",
         "__react_guard_1__", "__finalize__", "done"],
    ),
    "plan-and-execute": (
        {"max_iterations": 2},
        [reply({"steps": ["search", "write"]}), reply("searched"), reply("wrote"),
         reply("Tea is a drink.")],
        ["__plan__", "__cost_guard_0__", "__step_0__", "__cost_guard_1__", "__step_1__",
         "__finalize__", "done"],
    ),
    "critic": (
        {"max_iterations": 3},
        [reply("draft one"), reply({"score": 0.4, "passed": False, "feedback": "sources"}),
         reply("draft two"), reply({"score": 0.9, "passed": True, "feedback": "good"}),
         reply("Tea is a drink.")],
        ["__draft__", "__critic_0__", "__critic_gate_0__", "__revise_0__", "__critic_1__",
         "__critic_gate_1__", "__finalize__", "done"],
    ),
    "reflection": (
        {"max_iterations": 3},
        [reply("An answer."), reply({"score": 0.5, "passed": False, "gaps": "depth"}),
         reply("A deeper answer."), reply({"score": 0.95, "passed": True}),
         reply("Tea is a drink.")],
        ["__execute__", "__reflect_0__", "__reflect_gate_0__", "__revise_0__",
         "__reflect_1__", "__reflect_gate_1__", "__finalize__", "done"],
    ),
    "consensus": (
        {"strategy_config": {"num_agents": 2}},
        [reply("green"), reply("black"), reply({"votes": [], "winner": 1}),
         reply("black tea"), reply("Tea is a drink.")],
        ["__agent_0__", "__cost_guard_0__", "__agent_1__", "__vote__", "__judge__",
         "__finalize__", "done"],
    ),
    "debate": (
        {"max_iterations": 2},
        [reply("tea is best"), reply("coffee is"), reply({"settled": False, "score": 0.5}),
         reply("tea has less caffeine"), reply("but taste"),
         reply({"settled": True, "score": 0.8}), reply("Tea is a drink.")],
        ["__propose__", "__counter_0__", "__judge_0__", "__judge_gate_0__",
         "__cost_guard_0__", "__respond_0__", "__counter_1__", "__judge_1__",
         "__finalize__", "done"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
async def test_each_strategy_runs_its_node_sequence_I2(tmp_path: Path, strategy: str) -> None:
    agent, script, expected = EXPECTED[strategy]
    state, records, models = await run_strategy(tmp_path, strategy, script, **agent)
    assert state.status == "completed", state.error
    assert path_of(records) == expected
    assert state.data["result"] == "Tea is a drink."
    assert not any(isinstance(r, StrategyLimitReached) for r in records)
    assert len(models.requests) == len(script)  # every answer taken, none asked twice
    assert f"[{strategy}] Answer about tea" in models.requests[0].body["messages"][-1]["content"]


async def test_rounds_running_out_halt_with_the_best_scored_draft(tmp_path: Path) -> None:
    script = [
        reply("draft one"), reply({"score": 0.72, "passed": False, "feedback": "more"}),
        reply("draft two"), reply({"score": 0.55, "passed": False, "feedback": "worse"}),
    ]  # fmt: skip
    state, records, models = await run_strategy(tmp_path, "critic", script, max_iterations=2)
    assert state.status == "limit_exceeded"
    assert path_of(records) == [
        "__draft__", "__critic_0__", "__critic_gate_0__", "__revise_0__", "__critic_1__",
    ]  # fmt: skip  # the finalizer was never called
    [halt] = [r for r in records if isinstance(r, StrategyLimitReached)]
    assert (halt.node_id, halt.limit, halt.spent, halt.cap) == ("__finalize__", "iterations", 2, 2)
    assert (halt.best, halt.best_from, halt.score) == ("draft one", "__draft_output__", 0.72)
    assert state.data["result"] == "draft one"  # the best so far, not the latest
    assert "2 of 2 rounds ran out unresolved -> HALT, returning best-so-far (0.72)" in state.error
    assert records[-1].type == "execution_limit_exceeded"
    assert len(models.requests) == 4


async def test_react_still_acting_at_its_last_thought_halts_with_the_latest(
    tmp_path: Path,
) -> None:
    script = [
        reply({"thought": "look", "action": "web_search"}), reply({"observation": "x"}),
        reply({"thought": "look again", "action": "web_search"}),
    ]  # fmt: skip
    state, records, _ = await run_strategy(tmp_path, "react", script, max_iterations=2)
    assert state.status == "limit_exceeded"
    [halt] = [r for r in records if isinstance(r, StrategyLimitReached)]
    assert (halt.limit, halt.best_from, halt.score) == ("iterations", "__think_1_output__", None)
    assert state.data["result"] == {"thought": "look again", "action": "web_search"}


async def test_cost_guard_projects_the_next_call_and_halts_with_the_best_so_far(
    tmp_path: Path,
) -> None:
    # The seeds' reflection example: 0.41 USD spent, the next call projects 0.18, cap 0.50.
    script = [
        reply("An answer.", input_tokens=10, output_tokens=1000),  # 0.17578 USD
        reply({"score": 0.81, "passed": False}, input_tokens=10, output_tokens=1333),
    ]
    state, records, models = await run_strategy(
        tmp_path, "reflection", script, model="pricey", max_iterations=3, max_cost_usd=0.5
    )
    assert state.status == "limit_exceeded"
    [halt] = [r for r in records if isinstance(r, StrategyLimitReached)]
    assert (halt.node_id, halt.limit, halt.cap) == ("__revise_0__", "cost_usd", 0.5)
    assert (round(halt.spent, 2), round(halt.projected, 2)) == (0.41, 0.18)
    assert "$0.41 + projected $0.18 > cap $0.50 -> HALT, returning best-so-far (0.81)" in (
        state.error or ""
    )
    assert state.data["result"] == "An answer."
    assert "__cost_exceeded__" not in state.data  # under the cap: the projection halted it
    assert len(models.requests) == 2  # the revision was never sent
    assert path_of(records) == ["__execute__", "__reflect_0__", "__reflect_gate_0__"]


async def test_timeout_halts_before_the_next_call_with_the_best_so_far(tmp_path: Path) -> None:
    clock = VirtualClock()
    release = threading.Event()
    answers = [reply("draft one"), reply({"score": 0.3, "passed": False})]

    def script(request: LoggedRequest) -> FakeReply:
        release.wait(30)  # the first call is in flight until the test moved the clock
        return answers.pop(0)

    async def past_the_timeout(models: FakeModelServer, rt: Runtime) -> None:
        with anyio.fail_after(30):
            while len(models.requests) < 1:
                await anyio.sleep(0.01)
        clock.advance(121)
        release.set()

    state, records, models = await run_strategy(
        tmp_path, "critic", script, clock=clock, during=past_the_timeout, timeout="2m"
    )
    assert state.status == "limit_exceeded"
    [halt] = [r for r in records if isinstance(r, StrategyLimitReached)]
    assert (halt.node_id, halt.limit, halt.cap) == ("__critic_0__", "timeout_secs", 120)
    assert halt.spent >= 121
    assert state.data["result"] == "draft one"
    assert len(models.requests) == 1


async def test_a_limit_node_reached_by_a_spent_cost_records_limit_reached(tmp_path: Path) -> None:
    # 1100 output tokens cost 0.193 USD, past a 0.19 cap: the guard routes to the limit node.
    script = [reply({"thought": "t", "action": "FINISH"}, input_tokens=1, output_tokens=1100)]
    state, records, _ = await run_strategy(
        tmp_path, "react", script, model="pricey", max_iterations=2, max_cost_usd=0.19
    )
    assert state.status == "limit_exceeded"
    assert path_of(records) == ["__think_0__", "__react_guard_0__", "__limit_exceeded__"]
    [halt] = [r for r in records if isinstance(r, StrategyLimitReached)]
    assert (halt.node_id, halt.limit, halt.best_from) == (
        "__limit_exceeded__",
        "cost_usd",
        "__think_0_output__",
    )
    assert state.data["result"] == {"thought": "t", "action": "FINISH"}
