"""``run_code`` nodes and the agent's ``run_code`` tool on a real runtime (a SQLite file, the
fake model server, a sandbox service on loopback): each run is a journaled step with its
code's hash, its output and its resource use; code that misbehaves is stopped with a clear
record while the engine goes on; a configured sandbox service that is not there keeps the
engine from starting and is never replaced by the local sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.agents.sandbox import SandboxUnreachable, code_digest
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing import check_replay
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall
from tether.testing.loopback import free_loopback_port as _closed_port

pytestmark = pytest.mark.anyio

BAD_CODE = {
    "loop": "while True:\n    pass\n",
    "hoard": "h = []\nwhile True:\n    h.append(bytearray(10**6))\n",
    "net": "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
    "escape": "open('/tmp/tether-run-code-escape', 'w').write('x')\n",
    "bomb": "import os\nwhile True:\n    os.fork()\n",
}
EXPECTED = {
    "loop": "cpu_limit", "hoard": "memory_limit", "net": "refused", "escape": "refused",
    "bomb": "refused",
}  # fmt: skip

FLOW = """
workflow: {id: crunch, version: "1"}
nodes:
  first:
    type: run_code
    code: $script
    input: {n: $n}
    limits: {cpu_secs: 1, memory_mb: 128, wall_secs: 20}
    output_key: result
    next: end
"""

AGENT = """
workflow: {id: coder, version: "1"}
models:
  smart: {provider: openai, model: gpt-4o-mini}
nodes:
  work: {type: agent, model: smart, prompt: "{{ state.question }}", tools: [run_code],
         budget: {max_iterations: 4}, output_key: answer, next: end}
"""


def _runtime(tmp_path: Path, env: dict[str, str] | None = None) -> Runtime:
    return Runtime(f"sqlite:///{tmp_path / 'rt.db'}", node_kinds=AgentKinds(env=env or {}))


async def test_a_run_code_node_is_a_journaled_step_with_its_hash_output_and_use(
    tmp_path: Path,
) -> None:
    script = "print(INPUT['n'] * 2)"
    async with _runtime(tmp_path) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "flow.yaml"))
        run = await rt.start(wf, {"script": script, "n": 21})
        result = (await run.result())["result"]
        journal = await rt.journal(run.id)
        await check_replay(rt, run.id)
    assert (result["exit_code"], result["stdout"], result["stopped"]) == (0, "42\n", None)
    scheduled = next(e.record for e in journal if e.type == "node_scheduled")
    assert scheduled.input["code"] == script  # type: ignore[attr-defined]
    done = next(e.record for e in journal if e.type == "node_completed")
    facts = done.facts  # type: ignore[attr-defined]
    assert facts["code_sha256"] == code_digest(script) and facts["sandbox"] == "local"
    assert facts["exit_code"] == 0 and facts["wall_ms"] > 0 and "cpu_secs" in facts


async def test_misbehaving_code_is_stopped_with_a_clear_record_and_the_engine_goes_on(
    tmp_path: Path,
) -> None:
    async with _runtime(tmp_path) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "flow.yaml"))
        stopped = {}
        for name, code in BAD_CODE.items():
            run = await rt.start(wf, {"script": code, "n": 0})
            stopped[name] = (await run.result())["result"]
            done = [e.record for e in await rt.journal(run.id) if e.type == "node_completed"]
            facts = done[0].facts  # type: ignore[attr-defined]
            assert facts["sandbox_stopped"] == EXPECTED[name], (name, stopped[name], facts)
        after = await rt.start(wf, {"script": "print('still here')", "n": 0})
        assert (await after.result())["result"]["stdout"] == "still here\n"
    assert {name: r["stopped"] for name, r in stopped.items()} == EXPECTED
    assert all(r["reason"] for r in stopped.values())
    assert not Path("/tmp/tether-run-code-escape").exists()


async def test_an_agent_runs_model_written_code_through_its_run_code_tool(tmp_path: Path) -> None:
    script = [
        FakeReply(tool_calls=(FakeToolCall("run_code", {"code": "print(6 * 7)"}, id="c1"),)),
        FakeReply("The answer is 42."),
    ]
    with FakeModelServer(script, api_key="test-key") as server:
        async with _runtime(tmp_path, server.env("test-key")) as rt:
            wf = rt.register(compile_yaml_text(AGENT, "a.yaml"))
            run = await rt.start(wf, {"question": "What is 6 * 7? Compute it."})
            assert (await run.result())["answer"] == "The answer is 42."
            journal = await rt.journal(run.id)
    tool_done = [
        e.record for e in journal
        if e.type == "node_completed" and "code_sha256" in (e.record.facts or {})  # type: ignore[attr-defined]
    ]  # fmt: skip
    assert len(tool_done) == 1
    assert tool_done[0].facts["code_sha256"] == code_digest("print(6 * 7)")  # type: ignore[attr-defined]
    told = server.requests[1].body["messages"]
    assert any(m.get("role") == "tool" and "42" in m.get("content", "") for m in told)


async def test_sandbox_remote_without_a_service_is_refused_at_registration(tmp_path: Path) -> None:
    remote = FLOW.replace("type: run_code", "type: run_code\n    sandbox: remote")
    async with _runtime(tmp_path) as rt:
        with pytest.raises(WorkflowInvalid, match="TETHER_SANDBOX_URL"):
            rt.register(compile_yaml_text(remote, "flow.yaml"))
        bad = FLOW.replace("cpu_secs: 1", "cpu_seconds: 1")
        with pytest.raises(WorkflowInvalid, match="unknown limit 'cpu_seconds'"):
            rt.register(compile_yaml_text(bad, "flow.yaml"))


async def test_a_configured_sandbox_service_that_is_not_there_keeps_the_engine_from_starting(
    tmp_path: Path,
) -> None:
    env = {"TETHER_SANDBOX_URL": f"http://127.0.0.1:{_closed_port()}"}
    with pytest.raises(SandboxUnreachable, match="refusing to start"):
        async with _runtime(tmp_path, env):
            pass


def test_tether_dev_refuses_to_start_with_an_unreachable_sandbox_service(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2]),
        "TETHER_SANDBOX_URL": f"http://127.0.0.1:{_closed_port()}",
        "TETHER_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev", "--port", str(_closed_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "refusing to start" in done.stderr and "Traceback" not in done.stderr


class _SandboxService:
    """A sandbox service on loopback speaking the protocol (tether.agents.sandbox.remote):
    it records what it was asked and answers as a sandbox would."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(200, {"ok": True})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.runs.append(body)
                self._answer(200, {"exit_code": 0, "stdout": "remote says hi\n", "stderr": "",
                                   "stopped": None, "cpu_secs": 0.01, "wall_ms": 3})  # fmt: skip

            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sandbox_service() -> Iterator[_SandboxService]:
    service = _SandboxService()
    yield service
    service.close()


async def test_sandbox_remote_posts_the_code_to_the_service(
    tmp_path: Path, sandbox_service: _SandboxService
) -> None:
    remote = FLOW.replace("type: run_code", "type: run_code\n    sandbox: remote")
    async with _runtime(tmp_path, {"TETHER_SANDBOX_URL": sandbox_service.url}) as rt:
        wf = rt.register(compile_yaml_text(remote, "flow.yaml"))
        run = await rt.start(wf, {"script": "print('hi')", "n": 1})
        result = (await run.result())["result"]
        done = [e.record for e in await rt.journal(run.id) if e.type == "node_completed"]
    assert result["stdout"] == "remote says hi\n"
    assert sandbox_service.runs[0]["code"] == "print('hi')"
    assert sandbox_service.runs[0]["limits"]["cpu_secs"] == 1
    assert done[0].facts["sandbox"] == "remote"  # type: ignore[attr-defined]
