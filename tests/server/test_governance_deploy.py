"""Governance settings are part of the IR and survive ``tether.deploy`` unchanged: a workflow
with a redaction policy, a budget, a tool allow-list, a cost limit, an agent's approval
settings and an approval node's approvers is deployed to a real ``tether dev``, read back
(``GET /workflows/{id}/{version}``) with the same settings and digest, again after a restart,
and the policy it carries is applied by the restarted engine (loaded from its registry)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from test_server_http import DEADLINE, running_engine

from tether import deploy
from tether.ir import compile_yaml_file, workflow_from_ir

HERE = Path(__file__).resolve().parent

FLOW = """
workflow: {id: governed, version: "3"}
governance:
  redact:
    mode: hash
    detectors: [email, card]
    patterns: {employee: "EMP-[0-9]{6}"}
    fields: [password]
budget: {max_cost_usd: 0.5, max_tokens: 2000}
allowed_tools: [echo]
models:
  fast: {provider: openai, model: gpt-4o-mini}
nodes:
  echo: {type: tool, tool: echo, input: {payload: $payload}, output_key: echoed, next: helper}
  helper:
    type: agent
    model: fast
    tools: [echo]
    budget: {max_iterations: 3}
    requires_approval: [echo]
    approvers: ["role:finance"]
    approval_timeout: 10m
    next: review
  review:
    type: human_approval
    description: "ship it?"
    approvers: [ann, "role:lead"]
    patchable: [note]
    timeout: 1h
    on_timeout: reject
    next: end
"""

GOVERNANCE_KEYS = ("governance", "budget", "allowed_tools", "cost_limit_usd")
APPROVAL_KINDS = ("tools", "budget", "requires_approval", "approvers", "approval_timeout_secs")
APPROVAL_NODE = ("approvers", "patchable", "timeout_secs", "on_timeout")


def _governance(ir: dict[str, Any]) -> dict[str, Any]:
    kinds = {n: ir["nodes"][n]["kind"] for n in ("helper", "review")}
    return {
        **{k: ir.get(k) for k in GOVERNANCE_KEYS},
        "helper": {k: kinds["helper"].get(k) for k in APPROVAL_KINDS},
        "review": {k: kinds["review"].get(k) for k in APPROVAL_NODE},
    }


def _read_back(url: str, wid: str, version: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/workflows/{wid}/{version}", timeout=DEADLINE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_governance_survives_deploy_and_restart_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "governed.yaml"
    path.write_text(FLOW)
    local = compile_yaml_file(path)
    assert local.governance is not None and local.governance.redact is not None
    expected = _governance(msgspec.to_builtins(local))
    assert expected["governance"]["redact"]["mode"] == "hash"
    assert expected["helper"]["requires_approval"] == ["echo"]
    env = {"TETHER_AUDIT_KEYS": str(tmp_path / "keys")}
    with running_engine(tmp_path, env, modules="redaction_tools", cwd=HERE) as e:
        done = deploy(path, runtime=e.url, env={})
        back = _read_back(e.url, "governed", "3")
        assert back["digest"] == done.digest
        assert _governance(back["ir"]) == expected
        assert workflow_from_ir(back["ir"]).governance == local.governance
        jamjet = deploy({**back["ir"], "version": "4", "cost_limit_usd": 1.25}, e.url, env={})
        assert _governance(_read_back(e.url, "governed", "4")["ir"]) == {
            **expected, "cost_limit_usd": 1.25
        }  # fmt: skip
        assert jamjet.version == "4"
        assert httpx.get(f"{e.url}/workflows/governed/9").status_code == 404
        assert e.stop() == 0
    with running_engine(tmp_path, env, modules="redaction_tools", cwd=HERE) as e:
        again = _read_back(e.url, "governed", "3")
        assert again["digest"] == done.digest and _governance(again["ir"]) == expected
        # The restarted engine applies the policy it found in its registry.
        with httpx.Client(base_url=e.url, timeout=DEADLINE) as c:
            payload = {"to": "ann@example.com", "password": "hunter2"}
            body = {
                "workflow_id": "governed",
                "workflow_version": "3",
                "input": {"payload": payload},
            }
            eid = c.post("/executions", json=body).json()["execution_id"]
            deadline = time.monotonic() + DEADLINE
            while "echoed" not in (view := c.get(f"/executions/{eid}").json())["current_state"]:
                assert time.monotonic() < deadline, view
                time.sleep(0.02)
        text = str(view)
        assert "ann@example.com" not in text and "hunter2" not in text
        assert view["current_state"]["echoed"]["to"].startswith("[email:")
        assert view["current_state"]["echoed"]["password"].startswith("[password:")
