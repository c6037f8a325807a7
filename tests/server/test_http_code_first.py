"""A code-first workflow served by a real `tether dev --modules`: started, followed and
approved over the REST API like a graph workflow."""

from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path
from types import ModuleType

import httpx
import msgspec
from test_server_http import DEADLINE, EXAMPLES, running_engine, wait_terminal


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


@functools.cache
def code_first_example() -> ModuleType:
    """examples/code_first.py under the name the engine imports it by, ``code_first`` (the
    IR names its body ``code_first:order``), kept out of sys.modules: in this process that
    name is the package of tests/code_first."""
    spec = importlib.util.spec_from_file_location("code_first", EXAMPLES / "code_first.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _order_ir(**changes: object) -> dict[str, object]:
    ir: dict[str, object] = msgspec.to_builtins(code_first_example().order.ir())
    return {**ir, **changes}


def test_a_code_first_workflow_whose_body_the_engine_lacks_is_refused_naming_the_module_I10(
    tmp_path: Path,
) -> None:
    with running_engine(tmp_path, modules="tools") as e, httpx.Client(base_url=e.url) as c:
        refused = c.post("/workflows", json={"ir": _order_ir()})
        assert refused.status_code == 422, refused.text
        assert "code_first:order" in refused.json()["error"]
        assert "tether dev --modules code_first" in refused.json()["error"]
        assert c.get("/workflows").json()["workflows"] == []  # nothing was registered
        started = c.post("/executions", json={"workflow_id": "order", "input": {}})
        assert started.status_code == 404, started.text


def test_a_served_code_first_workflow_registers_as_the_engine_holds_it_I13(
    tmp_path: Path,
) -> None:
    with (
        running_engine(tmp_path, modules="tools,code_first") as e,
        httpx.Client(base_url=e.url) as c,
    ):
        first = c.post("/workflows", json={"ir": _order_ir()})
        assert first.status_code == 201, first.text
        again = c.post("/workflows", json={"ir": _order_ir()})
        assert again.json() == first.json()
        other_id = c.post("/workflows", json={"ir": _order_ir(workflow_id="order2")})
        assert other_id.status_code == 422, other_id.text
        assert "serves as workflow order@1" in other_id.json()["error"]
        changed = c.post("/workflows", json={"ir": _order_ir(description="edited")})
        assert changed.status_code == 409, changed.text
        assert "already registered with content" in changed.json()["error"]
