"""Who may act in the HTTP worker protocol, against a real ``tether dev`` (I14, I5): lease
tokens are signed by the engine, so a made-up or altered one changes nothing and the real
worker's report is applied; HTTP workers are handed only the queues of steps the engine has
no function for, never its own tools' steps."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from test_http_workers import claim, register_jamjet_flow, start
from test_server_http import Engine, free_port, ir_of, running_engine, wait_terminal

#: A tool step whose input carries a secret, on a queue of its own.
SECRET_CALL = """
workflow: {id: secret_call, version: "1", start: call,
           state_schema: {n: {type: integer}, api_key: {type: string}}}
nodes:
  call:
    type: tool
    tool: call_api
    input: {api_key: $api_key, n: $n}
    output_key: n
    labels: {queue: apis}
    next: end
"""


@pytest.fixture
def tokenless(tmp_path: Path) -> Iterator[Engine]:
    """No TETHER_TOKEN: any local process may call the API, so only the signature stands
    between it and a lease it was not handed."""
    with running_engine(tmp_path, {"TETHER_HTTP_LEASE_TTL_MS": "800"}) as e:
        yield e


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def node_outputs(c: httpx.Client, execution_id: str) -> list[tuple[str, object]]:
    events = c.get(f"/executions/{execution_id}/events").json()["events"]
    return [
        (e["kind"]["node_id"], e["kind"].get("output"))
        for e in events
        if e["kind"]["type"] == "node_completed"
    ]


def test_a_forged_lease_token_changes_nothing_and_the_holder_report_is_applied_I14_I5(
    tokenless: Engine,
) -> None:
    with httpx.Client(base_url=tokenless.url, timeout=10) as c:
        register_jamjet_flow(c)
        eid = start(c, 5)
        item = claim(c, "holder")
        payload_b64, _, mac_b64 = item["id"].partition(".")
        payload = msgspec.msgpack.encode([item["work_item_id"], item["fence"], "http/holder"])
        other_fence = msgspec.msgpack.encode([item["work_item_id"], item["fence"] + 1, "http/x"])
        forgeries = {
            # What a token was before it was signed: every part is guessable.
            "unsigned": (b64(payload), 404),
            "a made-up signature": (f"{b64(payload)}.{b64(bytes(32))}", 409),
            "the holder's signature on another lease": (f"{b64(other_fence)}.{mac_b64}", 409),
            "a truncated signature": (f"{payload_b64}.{mac_b64[:-4]}", 409),
        }
        for what, (token, status) in forgeries.items():
            r = c.post(f"/work-items/{token}/complete", json={"state_patch": {"n": 999}})
            assert r.status_code == status, (what, r.text)
            r = c.post(f"/work-items/{token}/fail", json={"error": "forged"})
            assert r.status_code == status, (what, r.text)
            assert c.post(f"/work-items/{token}/heartbeat", json={}).status_code == status
        assert node_outputs(c, eid) == []  # nothing of them was applied

        # The holder's own report is applied, and answered accepted.
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 10}})
        assert r.status_code == 200 and r.json()["accepted"] is True, r.text
        last = claim(c, "holder")
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 11}})
        assert r.status_code == 200, r.text
        view = wait_terminal(c, eid)
        assert view["status"] == "completed" and view["current_state"]["n"] == 11
        assert [n for n, _ in node_outputs(c, eid)] == ["double", "add_one"]


def test_without_TETHER_TOKEN_a_lease_from_before_a_restart_is_refused_and_runs_again_I5(
    tokenless: Engine,
) -> None:
    """The lease key is random per start when no secret is configured: a token handed out
    before the restart is refused with a reason (never 200), and the step runs again."""
    with httpx.Client(base_url=tokenless.url, timeout=10) as c:
        register_jamjet_flow(c)
        eid = start(c, 2)
        before = claim(c, "restarted")
    assert tokenless.stop() == 0
    tokenless.start()
    with httpx.Client(base_url=tokenless.url, timeout=10) as c:
        r = c.post(f"/work-items/{before['id']}/complete", json={"state_patch": {"n": 4}})
        assert r.status_code == 409, r.text
        assert "restart" in r.json()["error"] and "TETHER_LEASE_KEY" in r.json()["error"]
        again = claim(c, "restarted")  # the lease is reclaimed: the step is handed out anew
        assert (again["node_id"], again["attempt"]) == ("double", before["attempt"] + 1)
        r = c.post(f"/work-items/{again['id']}/complete", json={"state_patch": {"n": 4}})
        assert r.status_code == 200, r.text
        last = claim(c, "restarted")
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 5}})
        assert r.status_code == 200, r.text
        assert wait_terminal(c, eid)["current_state"]["n"] == 5
        assert [n for n, _ in node_outputs(c, eid)] == ["double", "add_one"]


def test_http_workers_are_never_handed_the_engine_s_own_tool_steps_I14(tmp_path: Path) -> None:
    """No in-process pool and no ZeroMQ worker connected: the tool step waits on its queue.
    An HTTP worker asking for that queue, or for the default tool queue, gets nothing of it
    (its input holds an API key; its output would be committed as the tool's)."""
    env = {"TETHER_EMBED_WORKERS": "0", "TETHER_WORKER_PORT": str(free_port())}
    with running_engine(tmp_path, env) as engine, httpx.Client(base_url=engine.url) as c:
        assert c.post("/workflows", json={"ir": ir_of(SECRET_CALL)}).status_code == 201
        r = c.post(
            "/executions",
            json={"workflow_id": "secret_call", "input": {"n": 1, "api_key": "sk-live-123"}},
        )
        eid = r.json()["execution_id"]
        r = c.post("/work-items/claim", json={"worker_id": "w", "queue_types": ["apis"]})
        assert r.status_code == 200 and r.json() == {"claimed": False}, r.text
        r = c.post("/work-items/claim", json={"worker_id": "w", "queue_types": ["python_tool"]})
        assert r.status_code == 403 and "own tools" in r.json()["error"], r.text
        view = c.get(f"/executions/{eid}").json()
        assert view["status"] == "running" and node_outputs(c, eid) == []


def test_TETHER_HTTP_WORKER_QUEUES_names_the_only_queues_http_workers_may_claim_I14(
    tmp_path: Path,
) -> None:
    env = {"TETHER_HTTP_WORKER_QUEUES": "reports, general"}
    with running_engine(tmp_path, env) as engine, httpx.Client(base_url=engine.url) as c:
        register_jamjet_flow(c)
        eid = start(c, 1)
        r = c.post("/work-items/claim", json={"worker_id": "w", "queue_types": ["billing"]})
        assert r.status_code == 403, r.text
        assert "TETHER_HTTP_WORKER_QUEUES: general, reports" in r.json()["error"]
        item = claim(c, "w")  # 'general' is named: the jamjet flow's steps are handed out
        assert (item["execution_id"], item["node_id"]) == (eid, "double")


def test_a_worker_holding_the_api_token_cannot_sign_another_workers_lease_I14(
    tmp_path: Path,
) -> None:
    """Every HTTP worker holds TETHER_TOKEN: a lease key derived from it would let one worker
    sign a report for another's lease (ids and owners are in the API, fences are small).
    The key comes from TETHER_LEASE_KEY, which no worker holds, or is random."""
    from tether.server.lease_tokens import LeaseKey, LeaseRef

    token = "api-token-every-worker-holds"
    with running_engine(tmp_path, {"TETHER_TOKEN": token}) as e:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=e.url, timeout=10, headers=auth) as c:
            register_jamjet_flow(c)
            start(c, 2)
            item = claim(c, "victim")
            head = item["id"].split(".")[0]
            ref = msgspec.msgpack.decode(
                base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)), type=LeaseRef
            )
            forged = LeaseKey.for_engine(token).sign(ref.work_item_id, ref.fence, ref.owner)
            r = c.post(f"/work-items/{forged}/complete", json={"state_patch": {"n": 99}})
            assert r.status_code == 409, r.text
            r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 4}})
            assert r.status_code == 200, r.text


def test_a_named_token_claims_only_the_queues_its_roles_name_I14(tmp_path: Path) -> None:
    """Worker credentials scoped to queues: a worker calling with a named token
    (TETHER_TOKENS_FILE) is handed only the queues of its ``queue:NAME`` roles."""
    shared, scoped, other = "shared-token-of-twenty", "scoped-worker-token-1", "approver-token-only"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"w1:queue:general {scoped}\nalice {other}\n")
    env = {"TETHER_TOKEN": shared, "TETHER_TOKENS_FILE": str(tokens)}
    with running_engine(tmp_path, env) as e, httpx.Client(base_url=e.url, timeout=10) as c:
        c.headers["Authorization"] = f"Bearer {shared}"
        register_jamjet_flow(c)
        start(c, 2)
        body = {"worker_id": "w-alice", "queue_types": ["general"]}
        r = c.post("/work-items/claim", json=body, headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 403 and "'alice' may claim queues none" in r.text, r.text
        c.headers["Authorization"] = f"Bearer {scoped}"
        r = c.post("/work-items/claim", json={"worker_id": "w1", "queue_types": ["gpu"]})
        assert r.status_code == 403 and "not gpu" in r.text, r.text
        item = claim(c, "w1")  # its own queue: handed the step
        assert item["node_id"] == "double"
