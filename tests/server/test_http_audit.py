"""``GET /executions/{id}/audit/verify`` on a real ``tether dev`` with a signing key: the
engine chains and signs its journal, and the route says so (or 404s an unknown id)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from test_server_http import EXAMPLES, ir_of, running_engine, wait_terminal

from tether.governance import init_keys

TOKEN = "audit-test-token-0123456789"


def test_a_run_on_a_signing_engine_verifies_through_its_end(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key = init_keys(keys)
    env = {"TETHER_TOKEN": TOKEN, "TETHER_AUDIT_KEYS": str(keys)}
    with running_engine(tmp_path, env) as e:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=e.url, headers=auth, timeout=10) as c:
            assert c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).is_success
            started = c.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}})
            eid = started.json()["execution_id"]
            assert wait_terminal(c, eid)["status"] == "completed"
            deadline = time.monotonic() + 30
            while True:  # the signer signs once a second: poll its verdict, with a deadline
                verdict = c.get(f"/executions/{eid}/audit/verify").json()
                if verdict.get("signed_through") == verdict["head_seq"]:
                    break
                assert time.monotonic() < deadline, verdict
                time.sleep(0.05)
            assert verdict["ok"] and verdict["chained_from"] == 1, verdict
            assert verdict["key_ids"] == [key.key_id]
            missing = c.get("/executions/exec_nope/audit/verify")
            assert missing.status_code == 404 and "exec_nope" in missing.json()["error"]
            assert httpx.get(f"{e.url}/executions/{eid}/audit/verify").status_code == 401
