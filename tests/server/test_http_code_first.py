"""A code-first workflow served by a real `tether dev --modules`: started, followed and
approved over the REST API like a graph workflow."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from test_server_http import DEADLINE, running_engine, wait_terminal


def test_a_code_first_workflow_runs_over_the_api(tmp_path: Path) -> None:
    with (
        running_engine(tmp_path, modules="tools,code_first") as e,
        httpx.Client(base_url=e.url) as c,
    ):
        started = c.post("/executions", json={"workflow_id": "order", "input": {"order_id": "B-2"}})
        assert started.status_code == 201, started.text
        eid = started.json()["execution_id"]
        deadline = time.monotonic() + DEADLINE
        while c.get(f"/executions/{eid}").json()["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pending = c.get(f"/executions/{eid}/approvals").json()["pending"]
        assert [p["node_id"] for p in pending] == ["@approval:review#4"]
        ok = c.post(f"/executions/{eid}/approve", json={"decision": "approved", "user_id": "ana"})
        assert ok.status_code == 200, ok.text
        view = wait_terminal(c, eid)
        assert view["status"] == "completed", view
        events = c.get(f"/executions/{eid}/events").json()["events"]
        nodes = [ev["node_id"] for ev in events if ev["kind"]["type"] == "node_completed"]
        assert nodes[:3] == ["fetch_order#1", "score_risk#2", "check_stock#3"]
