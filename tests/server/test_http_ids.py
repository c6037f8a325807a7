"""Ids a client gives a real ``tether dev``: an execution id every REST call can reach again
and that pre-empts nothing of the runtime's, and node ids that keep work-item ids apart
(I10 clear errors)."""

from __future__ import annotations

from pathlib import Path

import httpx
from test_server_http import EXAMPLES, ir_of, running_engine, wait_terminal

RULE = "1-128 characters of A-Z a-z 0-9 . _ : -"


def test_client_execution_ids_follow_one_rule_and_sched_is_cron_s_I10(tmp_path: Path) -> None:
    with running_engine(tmp_path) as e, httpx.Client(base_url=e.url) as c:
        c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()

        def start(eid: str) -> httpx.Response:
            return c.post("/executions", json={"workflow_id": "counter", "execution_id": eid})

        for eid in ("a/b", "..", ".", "x" * 500_000, "abc\u200fdef", "", "a b", "-x",
                    "x" * 129, "job~2"):  # fmt: skip
            got = start(eid)
            assert got.status_code == 422, (eid[:20], got.text)
            assert RULE in got.json()["error"]
        for eid, reserved in [("sched_nightly_1700000000000", "'sched_'"),
                              ("tether.scheduler", "'tether.'")]:  # fmt: skip
            got = start(eid)  # a cron fire's id taken first would pre-empt the fire
            assert got.status_code == 422 and reserved in got.json()["error"], got.text
        assert c.get("/executions").json()["executions"] == []  # none of them started
        for eid in ("order-1234", "tenant:7.run_2", "x" * 128):
            assert start(eid).status_code == 201, eid
            assert wait_terminal(c, eid)["status"] == "completed"
            assert c.get(f"/executions/{eid}/events").status_code == 200


def test_a_node_id_with_a_slash_is_a_422_naming_the_node_I10(tmp_path: Path) -> None:
    ir = ir_of(EXAMPLES / "counter.yaml")  # its node 'second' renamed in the IR sent
    ir["nodes"]["se/cond"] = {**ir["nodes"].pop("second"), "id": "se/cond"}
    ir["edges"] = [
        {k: "se/cond" if v == "second" else v for k, v in edge.items()} for edge in ir["edges"]
    ]
    with running_engine(tmp_path) as e, httpx.Client(base_url=e.url) as c:
        got = c.post("/workflows", json={"ir": ir})
        assert got.status_code == 422, got.text
        assert any("'se/cond'" in i["message"] for i in got.json()["issues"])
