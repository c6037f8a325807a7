"""Pydantic AI agents on Tether (TetherAgent), offline with Pydantic AI's TestModel and
FunctionModel: each model request and tool call is a journaled step, replayed rather than
repeated after a restart; approvals pause the run until a person decides."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import RunContext

from tether import Runtime, WorkflowContext, step, workflow
from tether.integrations.pydantic_ai import TetherAgent
from tether.testing import check_replay

pytestmark = pytest.mark.anyio

#: What really ran: each tool call and each model request, in order (tests clear it).
RAN: list[str] = []


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    RAN.clear()


@dataclass
class Shop:
    currency: str


def scripted(*replies: ModelResponse) -> FunctionModel:
    """A model answering with ``replies`` in turn, logging each request it gets."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        RAN.append(f"model {len([m for m in messages if m.kind == 'response'])}")
        return replies[len([m for m in messages if m.kind == "response"])]

    return FunctionModel(answer)


def calls(name: str, args: dict[str, Any], call_id: str) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=call_id)])


def refunds_agent(name: str = "refunds") -> TetherAgent[Shop, str]:
    model = scripted(
        calls("refund", {"order": "A-1", "amount": 12.5}, "c1"),
        ModelResponse(parts=[TextPart("done")]),
    )
    agent = Agent(model, name=name, deps_type=Shop)

    @agent.tool(requires_approval=True)
    async def refund(ctx: RunContext[Shop], order: str, amount: float) -> str:
        RAN.append(f"refund {order}")
        return f"refunded {amount} {ctx.deps.currency} on {order}"

    return TetherAgent(agent)


def node_ids(entries: list[Any], kind: str) -> list[str]:
    return [e.record.node_id for e in entries if e.type == kind]


async def until_waiting(rt: Runtime, run_id: str, prefix: str) -> None:
    with anyio.fail_after(10):
        while not any(n.startswith(prefix) for n in (await rt.state(run_id)).waits):
            await anyio.sleep(0)


async def test_each_request_and_tool_call_is_a_journaled_step(tmp_path: Path) -> None:
    base = Agent(TestModel(), name="helper")

    @base.tool_plain
    async def weather(city: str) -> str:
        RAN.append(f"weather {city}")
        return f"sunny in {city}"

    agent = TetherAgent(base)
    async with Runtime(f"sqlite:///{tmp_path / 'a.db'}", workflows=[agent.workflow]) as rt:
        run = await rt.start(agent.workflow, {"prompt": "weather?"})
        result = await run.result(timeout=10)
        await check_replay(rt, run.id)
        entries = await rt.journal(run.id)
    assert result["output"] == '{"weather":"sunny in a"}'
    assert [m["kind"] for m in result["messages"]] == ["request", "response"] * 2
    assert RAN == ["weather a"]
    assert node_ids(entries, "node_scheduled") == [
        "helper.model_request#3", "helper.call_tool#4", "helper.model_request#5",
    ]  # fmt: skip
    assert node_ids(entries, "node_completed")[:2] == ["@uuid#1", "@now#2"]


async def test_an_approval_pauses_the_run_until_approved_even_across_a_restart(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    agent = refunds_agent()
    async with Runtime(url, workflows=[agent.workflow]) as rt:
        run = await rt.start(agent.workflow, {"prompt": "refund A-1", "deps": {"currency": "EUR"}})
        await until_waiting(rt, run.id, "@approval:refunds.refund#")
        assert (await rt.get_execution(run.id)).status == "paused"
        [pending] = await rt.pending_approvals()
        assert pending.description == 'refund({"order":"A-1","amount":12.5})'
    assert RAN == ["model 0"]
    agent = refunds_agent()  # a new process: the same agent built again
    async with Runtime(url, workflows=[agent.workflow]) as rt:
        await rt.approve(run.id, "approved", user_id="ana")
        result = await rt.handle(run.id).result(timeout=10)
        await check_replay(rt, run.id)
    assert result["output"] == "done"
    assert RAN == ["model 0", "refund A-1", "model 1"]  # nothing committed ran again
    [returned] = [p for m in result["messages"] for p in m["parts"]
                  if p["part_kind"] == "tool-return"]  # fmt: skip
    assert returned["content"] == "refunded 12.5 EUR on A-1"  # deps crossed the journal


async def test_a_rejected_call_never_runs_and_the_model_is_told_who_said_no(
    tmp_path: Path,
) -> None:
    agent = refunds_agent()
    async with Runtime(f"sqlite:///{tmp_path / 'a.db'}", workflows=[agent.workflow]) as rt:
        run = await rt.start(agent.workflow, {"prompt": "refund", "deps": {"currency": "EUR"}})
        await until_waiting(rt, run.id, "@approval:refunds.refund#")
        await rt.approve(run.id, "rejected", user_id="bo", comment="too late")
        result = await run.result(timeout=10)
    assert "refund A-1" not in RAN
    [denied] = [p for m in result["messages"] for p in m["parts"]
                if p["part_kind"] == "tool-return"]  # fmt: skip
    assert denied["content"] == "The tool call was not approved (rejected by bo): too late"


async def test_a_model_retry_crosses_the_journal_as_data(tmp_path: Path) -> None:
    model = scripted(
        calls("lookup", {"order": "nope"}, "c1"),
        calls("lookup", {"order": "A-1"}, "c2"),
        ModelResponse(parts=[TextPart("found")]),
    )
    base = Agent(model, name="orders")

    @base.tool_plain
    async def lookup(order: str) -> str:
        RAN.append(f"lookup {order}")
        if order == "nope":
            raise ModelRetry("no such order, try A-1")
        return "shipped"

    agent = TetherAgent(base)
    async with Runtime(f"sqlite:///{tmp_path / 'a.db'}", workflows=[agent.workflow]) as rt:
        result = await rt.run(agent.workflow, {"prompt": "where is it?"})
    assert result["output"] == "found"
    assert RAN == ["model 0", "lookup nope", "model 1", "lookup A-1", "model 2"]
    retry = result["messages"][2]["parts"][0]
    assert (retry["content"], retry["outcome"]) == ("no such order, try A-1", "retried")


@step
async def record(note: str) -> str:
    RAN.append(f"record {note}")
    return note


HELPER = TetherAgent(Agent(TestModel(custom_output_text="hello"), name="greeter"))


@workflow(id="greet", version="1")
async def greet(ctx: WorkflowContext, data: dict[str, Any]) -> str:
    """An agent run between two steps of a user's own workflow."""
    await record("before")
    result = await HELPER.run(data["who"])
    return await record(f"{result.output} {data['who']}")


async def test_an_agent_runs_inside_a_users_workflow_between_steps(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'a.db'}", workflows=[greet],
                       tools=HELPER.steps) as rt:  # fmt: skip
        run = await rt.start(greet, {"who": "ana"})
        assert await run.result(timeout=10) == "hello ana"
        await check_replay(rt, run.id)
        scheduled = node_ids(await rt.journal(run.id), "node_scheduled")
    assert scheduled == ["record#1", "greeter.model_request#4", "record#5"]


async def test_outside_a_workflow_run_is_the_plain_agent() -> None:
    result = await HELPER.run("anyone")
    assert result.output == "hello"


def test_an_agent_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        TetherAgent(Agent(TestModel()))


def test_tether_imports_without_pydantic_ai() -> None:
    blocked = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pydantic_ai':\n"
        "            raise ImportError('pydantic_ai is not installed')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tether\n"
        "assert tether.Runtime and tether.workflow\n"
        "try:\n"
        "    import tether.integrations.pydantic_ai\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], check=True)  # fmt: skip
    assert out.stdout.strip() == "refused: pydantic_ai is not installed"
