"""Secret references behind a real ``tether dev`` (I14): the views a client reads
(``GET /executions/{id}``, ``/events``) and the engine's log show the reference, never the
value its tools ran with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
from test_server_http import EXAMPLES, HERE, ROOT, ir_of, running_engine, wait_terminal

RUNTIME_TESTS = ROOT / "tests" / "runtime"
sys.path.insert(0, str(RUNTIME_TESTS))  # secret_tools
from secret_tools import REF, SECRET, WORKFLOW, digest  # noqa: E402


def test_views_and_logs_show_the_reference_not_the_value_I14(tmp_path: Path) -> None:
    env = {
        "TETHER_SECRET_PROVIDER_KEY": SECRET,
        "TETHER_LOG_LEVEL": "debug",
        "PYTHONPATH": os.pathsep.join(map(str, [EXAMPLES, HERE, RUNTIME_TESTS, ROOT])),
    }
    with running_engine(tmp_path, env, modules="tools,secret_tools") as e:
        with httpx.Client(base_url=e.url) as c:
            c.post("/workflows", json={"ir": ir_of(WORKFLOW)}).raise_for_status()
            eid = c.post("/executions", json={"workflow_id": "secret-calls"}).json()["execution_id"]
            view = wait_terminal(c, eid)
            events = c.get(f"/executions/{eid}/events")
        e.stop()
        log = e.log.read_text()
    assert view["status"] == "failed" and view["current_state"]["digest"] == digest(SECRET)
    assert REF in events.text and SECRET not in events.text
    assert SECRET not in str(view) and SECRET not in log
    assert SECRET.encode() not in b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("engine.db")
    )
