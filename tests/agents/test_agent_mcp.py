"""MCP tools in workflows end to end: an agent calling a real MCP server's tools (stdio and
streamable HTTP), ``mcp_tool`` nodes, a server that crashes mid-call, a tool that is gone, and
what registration refuses. The runtime is real (SQLite file), the model is the fake server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_harness import DEMO, http_demo

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.errors import ExecutionFailedError
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.anyio

STDIO = {"command": [sys.executable, str(DEMO), "stdio"]}


def _agent(servers: dict[str, Any], tools: list[str]) -> str:
    return f"""
workflow: {{id: mcp-agent, version: "1"}}
models:
  smart: {{provider: openai, model: gpt-4o-mini}}
mcp_servers: {json.dumps(servers)}
nodes:
  work:
    type: agent
    model: smart
    instructions: "Use the tools."
    prompt: "{{{{ state.question }}}}"
    tools: {json.dumps(tools)}
    budget: {{max_iterations: 4}}
    output_key: answer
    next: end
"""


def _runtime(tmp_path: Path, server: FakeModelServer, env: dict[str, str] | None = None) -> Runtime:
    url = f"sqlite:///{tmp_path / 'rt.db'}"
    kinds = AgentKinds(env={**server.env("test-key"), **(env or {})})
    return Runtime(url, node_kinds=kinds)


async def test_an_agent_calls_an_mcp_tool_over_stdio_each_call_a_step_I12(tmp_path: Path) -> None:
    script = [
        FakeReply(tool_calls=(FakeToolCall("demo__add", {"a": 2, "b": 3}, id="c1"),)),
        FakeReply("The total is 5."),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            wf = rt.register(compile_yaml_text(_agent({"demo": STDIO}, ["demo.add"]), "a.yaml"))
            run = await rt.start(wf, {"question": "2+3?"})
            assert (await run.result())["answer"] == "The total is 5."
            journal = await rt.journal(run.id)
            await check_replay(rt, run.id)
    offered = server.requests[0].body["tools"]
    [add] = [t["function"] for t in offered]
    assert add["name"] == "demo__add" and add["parameters"]["required"] == ["a", "b"]
    scheduled = [e.record for e in journal if e.type == "node_scheduled"]
    first = next(e.record for e in journal if e.type == "node_completed")
    assert len(first.facts["mcp_tools_sha256"]) == 64  # type: ignore[union-attr]  # what was offered
    tool_call = scheduled[1].input  # type: ignore[attr-defined]
    assert tool_call["call"] == "tool" and tool_call["tool"] == "demo.add"
    answer = server.requests[1].body["messages"]
    assert any(m.get("role") == "tool" and '"total":5' in m.get("content", "") for m in answer)
    assert server.sent_twice() == []


MCP_NODE = """
workflow: {{id: mcp-node, version: "1"}}
mcp_servers: {servers}
nodes:
  sum:  {{type: mcp_tool, server: demo, tool: add, input: {{a: "$x", b: 2}}, output_key: total,
          next: say}}
  say:  {{type: mcp_tool, server: demo, tool: echo,
          input: {{text: "total={{{{ state.total.total }}}}"}}, output_key: said, next: end}}
"""


async def test_mcp_tool_nodes_bind_state_and_templates_into_arguments(tmp_path: Path) -> None:
    with FakeModelServer([], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            text = MCP_NODE.format(servers=json.dumps({"demo": STDIO}))
            wf = rt.register(compile_yaml_text(text, "n"))
            run = await rt.start(wf, {"x": 40})
            result = await run.result()
    assert result["total"] == {"total": 42, "terms": 2}
    assert result["said"] == "total=42"


async def test_mcp_over_http_fills_its_header_where_it_runs_and_never_journals_it_I14(
    tmp_path: Path,
) -> None:
    token = "tok-mcp-secret-123"
    with http_demo(token) as url, FakeModelServer([], api_key="test-key") as server:
        servers = {"demo": {"url": url, "headers": {"Authorization": "Bearer ${DEMO_TOKEN}"}}}
        async with _runtime(tmp_path, server, {"DEMO_TOKEN": token}) as rt:
            wf = rt.register(compile_yaml_text(MCP_NODE.format(servers=json.dumps(servers)), "n"))
            run = await rt.start(wf, {"x": 1})
            assert (await run.result())["said"] == "total=3"
            journal = await rt.journal(run.id)
    assert token not in repr(journal)
    assert (tmp_path / "rt.db").read_bytes().find(token.encode()) == -1


CRASHY = """
workflow: {{id: crashy, version: "1"}}
mcp_servers: {servers}
nodes:
  risky: {{type: mcp_tool, server: demo, tool: crash_once, input: {{marker: "$marker"}},
           output_key: out, retry: {{max_attempts: 2, delay_ms: 10}}, next: end}}
"""


async def test_a_server_crashing_mid_call_costs_one_attempt_and_is_restarted(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "crashed-once"
    with FakeModelServer([], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            text = CRASHY.format(servers=json.dumps({"demo": STDIO}))
            wf = rt.register(compile_yaml_text(text, "c"))
            run = await rt.start(wf, {"marker": str(marker)})
            assert (await run.result())["out"] == "survived"
            journal = await rt.journal(run.id)
    failed = [e.record for e in journal if e.type == "node_failed"]
    assert len(failed) == 1 and "demo" in failed[0].error  # type: ignore[attr-defined]
    assert marker.exists()


async def test_an_agent_tool_gone_from_its_server_fails_the_call_naming_it(tmp_path: Path) -> None:
    with FakeModelServer([FakeReply("unused")], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            wf = rt.register(compile_yaml_text(_agent({"demo": STDIO}, ["demo.read_file"]), "a"))
            run = await rt.start(wf, {"question": "?"})
            with pytest.raises(ExecutionFailedError) as failed:
                await run.result()
    assert "read_file" in str(failed.value) and "echo" in str(failed.value)
    assert server.requests == []  # the model was never called with a tool list it cannot use


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (_agent({"demo": STDIO}, ["files.read_file"]), ["work", "files.read_file", "'files'"]),
        (MCP_NODE.format(servers="{}"), ["sum", "demo", "mcp_servers"]),
        (
            MCP_NODE.format(servers=json.dumps({"demo": {"command": []}})),
            ["mcp_servers", "demo"],
        ),
    ],
    ids=["agent-names-unknown-server", "node-names-unknown-server", "bad-server-config"],
)
async def test_unknown_mcp_servers_and_bad_settings_are_refused_at_registration(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    with FakeModelServer([], api_key="test-key") as server:
        async with _runtime(tmp_path, server) as rt:
            with pytest.raises(WorkflowInvalid) as refused:
                rt.register(compile_yaml_text(text, "w.yaml"))
    for name in names:
        assert name in str(refused.value)


async def test_agent_kinds_serve_mcp_again_after_their_runtime_is_entered_again(
    tmp_path: Path,
) -> None:
    with FakeModelServer([], api_key="test-key") as server:
        kinds = AgentKinds(env=server.env("test-key"))
        text = MCP_NODE.format(servers=json.dumps({"demo": STDIO}))
        for round_ in range(2):
            async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=kinds) as rt:
                wf = rt.register(compile_yaml_text(text, "n"))
                run = await rt.start(wf, {"x": round_})
                assert (await run.result())["said"] == f"total={round_ + 2}"
