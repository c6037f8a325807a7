"""An ``a2a_task`` whose agent is named from state (jamjet's ``agent_uri: "{{ state.url }}"``):
jamjet's ``a2a-delegator`` template, written as ``jamjet init`` writes it, runs unmodified on a
real runtime against a small A2A agent on loopback and the fake model server. The URL is
rendered when the node is handed out and journaled in ``node_scheduled``; a value that is not
an http(s) URL, or a state without it, fails the node there with a clear error and no call."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_file, compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing.fake_models import FakeModelServer, FakeReply

jamjet_templates = pytest.importorskip("jamjet.templates")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Agent(BaseHTTPRequestHandler):
    """A remote A2A agent: its card, and message/send answered with a completed task."""

    sent: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != "/.well-known/agent.json":
            self.send_error(404)
            return
        host, port = self.server.server_address[:2]
        self._reply({"name": "summariser", "url": f"http://{host!s}:{port}/rpc"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        message = body["params"]["message"]
        type(self).sent.append(body["params"])
        said = message["parts"][0]["data"]["message"]
        task = {
            "kind": "task", "id": "t-1", "contextId": "c-1", "status": {"state": "completed"},
            "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": f"did: {said}"}]}],
        }  # fmt: skip
        self._reply({"jsonrpc": "2.0", "id": body["id"], "result": task})


@pytest.fixture
def remote_agent() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Agent", (_Agent,), {"sent": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.sent
    finally:
        server.shutdown()
        server.server_close()


def _delegator(tmp_path: Path) -> Path:
    project = tmp_path / "demo"
    for path, text in jamjet_templates.render_template("a2a-delegator", "demo").items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    return project / "workflow.yaml"


async def test_jamjets_a2a_delegator_runs_unmodified_with_the_agent_named_from_state(
    tmp_path: Path, remote_agent: tuple[str, list[dict[str, Any]]]
) -> None:
    url, sent = remote_agent
    with FakeModelServer([FakeReply("Q3 was summarised.")], api_key="k") as models:
        kinds = AgentKinds(env=models.env("k"))
        async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=kinds) as rt:
            wf = rt.register(compile_yaml_file(_delegator(tmp_path)))
            run = await rt.start(wf, {"task": "Summarise Q3", "agent_url": url})
            result = await run.result()
            journal = await rt.journal(run.id)
    assert result["agent_result"] == "did: Summarise Q3"
    assert result["final_summary"] == "Q3 was summarised."
    handed = next(
        e.record for e in journal
        if e.type == "node_scheduled" and e.record.node_id == "delegate"  # type: ignore[attr-defined]
    )  # fmt: skip
    assert handed.input["agent"] == url  # type: ignore[attr-defined]
    done = next(
        e.record for e in journal
        if e.type == "node_completed" and e.record.node_id == "delegate"  # type: ignore[attr-defined]
    )  # fmt: skip
    assert done.facts["a2a_agent"] == "summariser"  # type: ignore[attr-defined]
    assert [p["metadata"] for p in sent] == [{"skill": "default"}]


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"agent_url": "ftp://files.example/agent"}, "must give an http(s) URL, got 'ftp://"),
        ({"agent_url": "agent.example.com"}, "must give an http(s) URL, got 'agent.ex"),
        ({}, "the template uses state.agent_url"),
    ],
)
async def test_a_templated_agent_that_is_not_an_http_url_fails_at_hand_out(
    tmp_path: Path,
    remote_agent: tuple[str, list[dict[str, Any]]],
    given: dict[str, Any],
    error: str,
) -> None:
    _, sent = remote_agent
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=AgentKinds(env={})) as rt:
        wf = rt.register(compile_yaml_file(_delegator(tmp_path)))
        run = await rt.start(wf, {"task": "x", **given})
        with pytest.raises(Exception, match="delegate"):
            await run.result()
        failed = [e.record for e in await rt.journal(run.id) if e.type == "node_failed"]
    assert len(failed) == 1 and error in failed[0].error  # type: ignore[attr-defined]
    assert failed[0].retryable is False  # type: ignore[attr-defined]
    assert sent == []


async def test_a_fixed_agent_must_be_a_url_and_a_template_must_parse(tmp_path: Path) -> None:
    flow = """
workflow: {{id: d, version: "1"}}
nodes:
  ask: {{type: a2a_task, agent_uri: "{agent}", input: {{q: $q}}, output_key: a, next: end}}
"""
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=AgentKinds(env={})) as rt:
        with pytest.raises(WorkflowInvalid, match="must be the agent's http"):
            rt.register(compile_yaml_text(flow.format(agent="agent.example.com"), "d.yaml"))
        with pytest.raises(WorkflowInvalid, match="remote_agent"):
            rt.register(compile_yaml_text(flow.format(agent="{{ state.url "), "d.yaml"))
        assert rt.register(compile_yaml_text(flow.format(agent="$where"), "d.yaml")).nodes
