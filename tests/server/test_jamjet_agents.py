"""The ``jamjet`` SDK's compiled agents (``Agent(...).compile()``) on ``tether dev``: registered
and driven by the SDK's own ``JamjetClient``, their model calls answered by the fake OpenAI
server on loopback, for the react, plan-and-execute, critic and reflection strategies, and a
cost guard that ends a run ``limit_exceeded`` through the strategy's ``__limit_exceeded__``."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from jamjet import Agent, JamjetClient, tool
from test_server_http import DEADLINE, Engine, running_engine

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.agents.kinds.answers import json_or_text
from tether.errors import ExecutionFailedError
from tether.testing import check_replay
from tether.testing.fake_models import FakeFailure, FakeModelServer, FakeReply, LoggedRequest

KEY = "test-key"
TERMINAL = ("completed", "failed", "cancelled", "limit_exceeded")


@tool
async def web_search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


class Scripts:
    """The fake provider's answers, a queue per agent: each agent's goal (its instructions)
    is a token in every prompt it sends, so the tests sharing one engine never take each
    other's answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[FakeReply]] = {}
        self.asked: dict[str, list[str]] = {}
        self.problems: list[str] = []

    def add(self, goal: str, *answers: FakeReply) -> None:
        with self._lock:
            self._queues[goal] = deque(answers)
            self.asked[goal] = []

    def __call__(self, request: LoggedRequest) -> FakeReply | FakeFailure:
        sent = json.dumps(request.body.get("messages", []))
        with self._lock:
            for goal, queue in self._queues.items():
                if goal in sent:
                    self.asked[goal].append(request.body["messages"][-1]["content"])
                    if queue:
                        return queue.popleft()
            self.problems.append(f"no answer left for {sent[:200]}")
        return FakeFailure(500, "no scripted answer left")


@pytest.fixture(scope="module")
def scripts() -> Scripts:
    return Scripts()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, scripts: Scripts) -> Iterator[Engine]:
    with FakeModelServer(scripts, api_key=KEY) as models:
        tmp = Path(tmp_path_factory.mktemp("jamjet-agents"))
        with running_engine(tmp, models.env(KEY)) as e:
            yield e
    assert scripts.problems == []


def agent(name: str, strategy: str, goal: str, **limits: Any) -> Agent:
    limits.setdefault("max_iterations", 2)
    return Agent(
        name, model="gpt-4o-mini", tools=[web_search], instructions=goal, strategy=strategy,
        **limits,
    )  # fmt: skip


def run(engine: Engine, compiled: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Register ``compiled`` and run it to a terminal status with the SDK's client: the
    execution's view and its events."""

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with JamjetClient(base_url=engine.url, timeout=10.0) as client:
            registered = await client.create_workflow(compiled)
            started = await client.start_execution(registered["workflow_id"], {"topic": "tea"})
            eid = started["execution_id"]
            with anyio.fail_after(DEADLINE):
                while (view := await client.get_execution(eid))["status"] not in TERMINAL:
                    await anyio.sleep(0.02)
            events: list[dict[str, Any]] = (await client.get_events(eid))["events"]
            return view, events

    return anyio.run(scenario)


def path_of(events: list[dict[str, Any]]) -> list[str]:
    """The nodes the run went through, in order."""
    return [e["node_id"] for e in events if e["kind"]["type"] == "node_completed"]


def reply(text: Any, **tokens: int) -> FakeReply:
    return FakeReply(text if isinstance(text, str) else json.dumps(text), **tokens)


def test_react_runs_to_completed_thoughts_land_as_json(engine: Engine, scripts: Scripts) -> None:
    goal = "[agent:react]"
    scripts.add(
        goal,
        reply({"thought": "look it up", "action": "web_search", "input": {"query": "tea"}}),
        reply({"observation": "tea is a drink", "progress": "half"}),
        reply({"thought": "enough", "action": "FINISH", "input": {}}),
        reply("Tea is a drink."),
    )
    view, events = run(engine, agent("react-agent", "react", goal).compile())
    assert view["status"] == "completed", view["error"]
    assert path_of(events) == [
        "__think_0__", "__react_guard_0__", "__observe_0__", "__think_1__",
        "__react_guard_1__", "__finalize__",
    ]  # fmt: skip
    state = view["current_state"]
    assert state["__think_0_output__"]["action"] == "web_search"  # parsed, not a string
    assert state["result"] == "Tea is a drink."
    assert "__cost_exceeded__" not in state  # under the limit: absent, which reads as false
    observe_prompt = scripts.asked[goal][1]
    assert '"action":"web_search"' in observe_prompt  # {{ state.__think_0_output__ }} as JSON


def test_plan_and_execute_runs_each_step_on_the_plan(engine: Engine, scripts: Scripts) -> None:
    goal = "[agent:plan]"
    scripts.add(
        goal,
        reply({"steps": ["search", "write"]}),
        reply("searched"),
        reply("wrote"),
        reply("Done: tea."),
    )
    view, events = run(engine, agent("plan-agent", "plan-and-execute", goal).compile())
    assert view["status"] == "completed", view["error"]
    assert path_of(events) == [
        "__plan__", "__cost_guard_0__", "__step_0__", "__cost_guard_1__", "__step_1__",
        "__finalize__",
    ]  # fmt: skip
    state = view["current_state"]
    assert state["__plan__"] == {"steps": ["search", "write"]}
    assert (state["__step_0_output__"], state["__step_1_output__"]) == ("searched", "wrote")
    assert state["result"] == "Done: tea."
    assert '{"steps":["search","write"]}' in scripts.asked[goal][1]


def test_critic_fails_a_draft_revises_it_then_passes(engine: Engine, scripts: Scripts) -> None:
    goal = "[agent:critic]"
    scripts.add(
        goal,
        reply("draft one"),
        reply({"score": 0.4, "passed": False, "feedback": "cite your sources"}),
        reply("draft two, with sources"),
        reply({"score": 0.9, "passed": True, "feedback": "good"}),
        reply("The final draft."),
    )
    view, events = run(engine, agent("critic-agent", "critic", goal, max_iterations=3).compile())
    assert view["status"] == "completed", view["error"]
    assert path_of(events) == [
        "__draft__", "__critic_0__", "__critic_gate_0__", "__revise_0__", "__critic_1__",
        "__critic_gate_1__", "__finalize__",
    ]  # fmt: skip  # the second gate passed: no second revision
    state = view["current_state"]
    assert state["__critic_0_verdict__"]["passed"] is False
    assert state["__critic_1_verdict__"] == {"score": 0.9, "passed": True, "feedback": "good"}
    revise_prompt = scripts.asked[goal][2]
    assert "Previous draft: draft one" in revise_prompt
    assert "Critic feedback: cite your sources" in revise_prompt  # the verdict's .feedback
    assert state["result"] == "The final draft."


def test_reflection_passes_at_once_on_a_fenced_json_verdict(
    engine: Engine, scripts: Scripts
) -> None:
    goal = "[agent:reflection]"
    scripts.add(
        goal,
        reply("An answer."),
        reply('```json\n{"score": 0.95, "passed": true, "gaps": "", "suggestions": ""}\n```'),
        reply("The polished answer."),
    )
    compiled = agent("reflect-agent", "reflection", goal, max_iterations=3).compile()
    view, events = run(engine, compiled)
    assert view["status"] == "completed", view["error"]
    assert path_of(events) == [
        "__execute__", "__reflect_0__", "__reflect_gate_0__", "__finalize__",
    ]  # fmt: skip
    assert view["current_state"]["__reflect_0_verdict__"]["passed"] is True
    assert view["current_state"]["result"] == "The polished answer."


def test_a_spent_cost_limit_ends_the_run_at_the_limit_node_I12(
    engine: Engine, scripts: Scripts
) -> None:
    goal = "[agent:react-cost]"
    # gpt-4o-mini: 2000 input + 1000 output tokens cost 0.0009 USD, over a 0.0008 limit; the first
    # call projects 0.00063 (its prompt and 1024 output tokens), under it, so it is sent.
    scripts.add(
        goal, reply({"thought": "t", "action": "FINISH"}, input_tokens=2000, output_tokens=1000)
    )
    compiled = agent("costly-agent", "react", goal, max_cost_usd=0.0008).compile()
    view, events = run(engine, compiled)
    assert view["status"] == "limit_exceeded"
    assert path_of(events) == ["__think_0__", "__react_guard_0__", "__limit_exceeded__"]
    assert view["current_state"]["__cost_exceeded__"] is True
    assert "__limit_exceeded__" in view["error"] and "cost limit is 0.0008 USD" in view["error"]
    guard = next(e for e in events if e.get("node_id") == "__react_guard_0__")
    assert guard["kind"]["output"] == {"next": ["__limit_exceeded__"]}
    assert events[-1]["kind"]["type"] == "execution_limit_exceeded"
    assert len(scripts.asked[goal]) == 1  # nothing was called past the limit


def test_events_show_each_model_calls_facts_after_its_rendered_prompt_I12(
    engine: Engine, scripts: Scripts
) -> None:
    goal = "[agent:facts]"
    scripts.add(
        goal,
        reply({"steps": ["one"]}, input_tokens=120, output_tokens=30),
        reply("one done", input_tokens=80, output_tokens=10),
        reply("all done", input_tokens=60, output_tokens=5),
    )
    compiled = agent("facts-agent", "plan-and-execute", goal, max_iterations=1).compile()
    view, events = run(engine, compiled)
    assert view["status"] == "completed", view["error"]
    calls = [e for e in events if e["kind"]["type"] == "node_completed" and e["kind"]["dispatch"]]
    assert [e["node_id"] for e in calls] == ["__plan__", "__step_0__", "__finalize__"]
    for done, tokens in zip(calls, [(120, 30), (80, 10), (60, 5)], strict=True):
        kind = done["kind"]
        assert (kind["gen_ai_system"], kind["gen_ai_model"]) == ("openai", "gpt-4o-mini")
        assert (kind["input_tokens"], kind["output_tokens"]) == tokens
        assert kind["cost_usd"] > 0 and kind["finish_reason"] == "stop"
        # The call was journaled, its prompt rendered, before it was made.
        [sent] = [
            e for e in events
            if e["kind"]["type"] == "node_scheduled" and e["node_id"] == done["node_id"]
        ]  # fmt: skip
        assert sent["sequence"] < done["sequence"]
        assert goal in sent["kind"]["input"]["messages"][-1]["content"]
    assert calls[0]["kind"]["output"] == {"steps": ["one"]}


@pytest.mark.parametrize(
    ("text", "lands"),
    [
        ('{"passed": true}', {"passed": True}),
        (" [1, 2] ", [1, 2]),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n["x"]\n```', ["x"]),
        ("PASS", "PASS"),
        ("42", "42"),  # JSON, but not an object or array: prose that parses stays prose
        ('"quoted"', '"quoted"'),
        ('{"cut": ', '{"cut": '),  # looks like JSON, is not: the text, not a failure
        ('Verdict: {"passed": true}', 'Verdict: {"passed": true}'),
        ("", ""),
    ],
)
def test_a_jamjet_model_answer_lands_as_json_or_text(text: str, lands: Any) -> None:
    assert json_or_text(text) == lands


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_replay_equals_live_through_a_cost_guard_and_a_critic_loop_I2(
    tmp_path: Path,
) -> None:
    costly = reply({"thought": "t", "action": "FINISH"}, input_tokens=2000, output_tokens=1000)
    critic = [
        reply("v1"), reply({"passed": False, "feedback": "more"}), reply("v2"),
        reply({"passed": True, "feedback": "ok"}), reply("final"),
    ]  # fmt: skip
    with FakeModelServer([costly, *critic], api_key=KEY) as models:
        url = f"sqlite:///{tmp_path / 'rt.db'}"
        async with Runtime(url, node_kinds=AgentKinds(env=models.env(KEY))) as rt:
            limited = rt.register(agent("c1", "react", "g1", max_cost_usd=0.0008).compile())
            first = await rt.start(limited, {})
            with pytest.raises(ExecutionFailedError, match="cost limit"):  # limit_exceeded
                await first.result()
            assert (await rt.state(first.id)).status == "limit_exceeded"
            await check_replay(rt, first.id)
            looped = rt.register(agent("c2", "critic", "g2", max_iterations=3).compile())
            second = await rt.start(looped, {})
            assert (await second.result())["result"] == "final"
            await check_replay(rt, second.id)
    assert models.sent_twice() == []
