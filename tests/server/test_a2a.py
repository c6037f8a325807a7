"""A2A between two real ``tether dev`` engines on loopback: each publishes Agent Cards that
validate against the protocol's own types (``a2a-sdk``, generated from its JSON schema), and
answers the JSON-RPC task methods; an ``a2a_task`` node on one engine delegates to the other,
journaled with who answered, and a delegate killed mid-task is retried once it is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tether.ir import compile_yaml_text
from tether.testing.dev_engine import DevEngine, start_dev_engine

a2a_types = pytest.importorskip("a2a.types")

DELEGATE = """
workflow: {id: doubler, version: "1", name: Doubler, description: "Doubles n, once told to go.",
           state_schema: {n: {type: integer, default: 0}, calc: {type: object}}}
nodes:
  gate: {type: wait, event: go, next: calc}
  calc: {type: run_code, code: "print(INPUT['n'] * 2)", input: {n: $n}, output_key: calc,
         next: end}
"""

BOSS = """
workflow: {{id: boss, version: "1"}}
nodes:
  ask:
    type: a2a_task
    remote_agent: "{url}"
    skill: doubler
    input: {{n: $n}}
    retry: {{max_attempts: 20, delay_ms: 200, max_delay_ms: 500}}
    output_key: answer
    next: end
"""


def _ir(text: str) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(compile_yaml_text(text, "inline.yaml"))
    return out


def _register(engine: DevEngine, text: str) -> None:
    httpx.post(f"{engine.url}/workflows", json={"ir": _ir(text)}).raise_for_status()


def _rpc(url: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    reply = httpx.post(url, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _until(what: str, check: Any, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it gives something truthy, within a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _executions(engine: DevEngine, workflow_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{engine.url}/executions", params={"workflow_id": workflow_id})
    rows: list[dict[str, Any]] = reply.json()["executions"]
    return rows


def _message(message_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "message", "role": "user", "messageId": message_id,
            "parts": [{"kind": "data", "data": data}]}  # fmt: skip


def test_cards_validate_against_the_protocols_schema(tmp_path: Path) -> None:
    with start_dev_engine(tmp_path) as engine:
        _register(engine, DELEGATE)
        cards = [
            httpx.get(f"{engine.url}{path}").json()
            for path in ("/.well-known/agent.json", "/.well-known/agent-card.json",
                         "/agents/doubler/card")
        ]  # fmt: skip
        listed = httpx.get(f"{engine.url}/agents").json()["agents"]
    for card in cards:
        parsed = a2a_types.AgentCard.model_validate(card)
        # Nothing the protocol does not define (the SDK's types ignore unknown keys).
        assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == card
        assert card["protocolVersion"] == "0.3.0" and card["preferredTransport"] == "JSONRPC"
    assert [s["id"] for s in cards[0]["skills"]] == ["doubler"]
    assert cards[0]["url"] == f"{engine.url}/a2a"
    assert cards[2]["url"] == f"{engine.url}/agents/doubler/a2a"
    assert cards[2]["name"] == "Doubler" and "Doubles n" in cards[2]["description"]
    assert listed == [{"id": "doubler", "name": "Doubler", "version": "1",
                       "description": "Doubles n, once told to go.", "status": "active",
                       "card_url": f"{engine.url}/agents/doubler/card"}]  # fmt: skip


def test_the_task_methods_answer_as_the_protocol_says(tmp_path: Path) -> None:
    with start_dev_engine(tmp_path) as engine:
        _register(engine, DELEGATE)
        rpc = f"{engine.url}/agents/doubler/a2a"
        sent = _rpc(rpc, "message/send", {"message": _message("m-1", {"n": 4})})
        task = a2a_types.SendMessageSuccessResponse.model_validate(sent).result
        assert task.status.state.value == "working"
        again = _rpc(rpc, "message/send", {"message": _message("m-1", {"n": 4})})
        assert again["result"]["id"] == task.id  # the same message: the same task, once
        assert len(_executions(engine, "doubler")) == 1
        httpx.post(f"{engine.url}/executions/{task.id}/external-event",
                   json={"correlation_key": "go"}).raise_for_status()  # fmt: skip

        def done() -> dict[str, Any] | None:
            got = _rpc(rpc, "tasks/get", {"id": task.id})["result"]
            return got if got["status"]["state"] == "completed" else None

        final = _until("the task to complete", done)
        a2a_types.GetTaskSuccessResponse.model_validate({"jsonrpc": "2.0", "id": 1,
                                                         "result": final})  # fmt: skip
        assert final["artifacts"][0]["parts"][0]["data"]["calc"]["stdout"] == "8\n"
        assert final["metadata"]["cost_usd"] == 0.0
        late = _rpc(rpc, "tasks/cancel", {"id": task.id})
        assert late["error"]["code"] == -32002  # TaskNotCancelable
        assert _rpc(rpc, "tasks/get", {"id": "nope"})["error"]["code"] == -32001
        assert _rpc(rpc, "tasks/resubscribe", {"id": task.id})["error"]["code"] == -32601
        bad = _rpc(rpc, "message/send", {"message": {"messageId": "m-2", "parts": []}})
        assert bad["error"]["code"] == -32602 and "parts" in bad["error"]["message"]
        second = _rpc(rpc, "message/send", {"message": _message("m-3", {"n": 1})})["result"]
        cancelled = _rpc(rpc, "tasks/cancel", {"id": second["id"]})["result"]
        assert cancelled["status"]["state"] == "canceled"


def test_a_delegation_survives_the_delegate_being_killed_mid_task(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with start_dev_engine(tmp_path / "b") as delegate:
        _register(delegate, DELEGATE)
        port, b_url = delegate.port, delegate.url
        with start_dev_engine(tmp_path / "a") as boss:
            _register(boss, BOSS.format(url=b_url))
            started = httpx.post(f"{boss.url}/executions",
                                 json={"workflow_id": "boss", "input": {"n": 21}})  # fmt: skip
            run_id = started.json()["execution_id"]
            _until("the delegated task", lambda: _executions(delegate, "doubler"))
            delegate.process.send_signal(signal.SIGKILL)  # mid-task: it waits for "go"
            delegate.process.wait()

            def failed_once() -> bool:
                events = httpx.get(f"{boss.url}/executions/{run_id}/events").json()["events"]
                return any(e["kind"]["type"] == "node_failed" for e in events)

            _until("the delegation to fail while the delegate is down", failed_once)
            with start_dev_engine(tmp_path / "b", port=port) as again:

                def go_to_all() -> bool:
                    rows = _executions(again, "doubler")
                    waiting = [r for r in rows if r["status"] == "running"]
                    for row in waiting:
                        httpx.post(f"{again.url}/executions/{row['execution_id']}/external-event",
                                   json={"correlation_key": "go"})  # fmt: skip
                    view = httpx.get(f"{boss.url}/executions/{run_id}").json()
                    return view["status"] == "completed"

                _until("the boss to finish", go_to_all)
            view = httpx.get(f"{boss.url}/executions/{run_id}").json()
            events = httpx.get(f"{boss.url}/executions/{run_id}/events").json()["events"]
    assert view["output"]["answer"]["calc"]["stdout"] == "42\n"
    kinds = [e["kind"] for e in events]
    failures = [k for k in kinds if k["type"] == "node_failed"]
    assert failures and all(k["error_type"] == "A2aUnreachable" for k in failures)
    done = next(k for k in kinds if k["type"] == "node_completed" and k["node_id"] == "ask")
    facts = done  # the facts sit beside the record's own fields (server.views)
    assert facts["a2a_agent"] == "Tether engine" and facts["a2a_url"] == f"{b_url}/a2a"
    assert facts["a2a_task_id"].startswith("a2a-") and facts["a2a_state"] == "completed"
    assert facts["cost_usd"] == 0.0


def test_tether_agents_list_prints_the_engines_agents(tmp_path: Path) -> None:
    with start_dev_engine(tmp_path) as engine:
        _register(engine, DELEGATE)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        out = subprocess.run(
            [sys.executable, "-m", "tether.cli", "agents", "--engine", engine.url, "list"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        card = subprocess.run(
            [sys.executable, "-m", "tether.cli", "agents", "--engine", engine.url,
             "card", "doubler"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split() == [
        "doubler",
        "1",
        f"{engine.url}/agents/doubler/card",
    ]
    assert json.loads(card.stdout)["skills"][0]["id"] == "doubler"
