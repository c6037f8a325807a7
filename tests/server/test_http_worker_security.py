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
from test_server_http import Engine, running_engine, wait_terminal


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
        assert "restart" in r.json()["error"] and "TETHER_TOKEN" in r.json()["error"]
        again = claim(c, "restarted")  # the lease is reclaimed: the step is handed out anew
        assert (again["node_id"], again["attempt"]) == ("double", before["attempt"] + 1)
        r = c.post(f"/work-items/{again['id']}/complete", json={"state_patch": {"n": 4}})
        assert r.status_code == 200, r.text
        last = claim(c, "restarted")
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 5}})
        assert r.status_code == 200, r.text
        assert wait_terminal(c, eid)["current_state"]["n"] == 5
        assert [n for n, _ in node_outputs(c, eid)] == ["double", "add_one"]
