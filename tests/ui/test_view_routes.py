"""The dashboard's JSON views on a real ``tether dev`` (issue 18): runs paged by cursor with
filters and counts, pending approvals paged, dead letters with where to fork them, queue
depths, a run's timeline, and bad parameters answered 422 with the parameter named; the
page itself served from package data without a token while every view needs one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_engine import start, status_is, ui_engine, wait_until

TOKEN = "ui-test-token-of-24-chars"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ui_engine(tmp_path_factory.mktemp("views"), {"TETHER_TOKEN": TOKEN}) as e:
        yield e


def pages(c: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = c.get(path, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        out += body[key]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 10_000


def test_runs_pages_filters_counts_and_search(engine: Any) -> None:
    with engine.client() as c:
        paused = [start(c, "pay", i, execution_id=f"ui-pay-{i}") for i in range(5)]
        done = [start(c, "steps", i, execution_id=f"ui-steps-{i}") for i in range(3)]
        for eid in paused:
            wait_until(lambda eid=eid: status_is(c, eid, "paused"), f"{eid} paused")
        for eid in done:
            wait_until(lambda eid=eid: status_is(c, eid, "completed"), f"{eid} done")

        everything = pages(c, "/views/executions", "executions", limit=3)
        ids = [r["execution_id"] for r in everything]
        assert len(ids) == len(set(ids)) and set(paused + done) <= set(ids)
        assert [r["started_at"] for r in everything] == sorted(
            (r["started_at"] for r in everything), reverse=True
        )
        first = c.get("/views/executions", params={"limit": 3}).json()
        assert len(first["executions"]) == 3 and first["next_cursor"]
        row = next(r for r in everything if r["execution_id"] == "ui-steps-0")
        assert (row["workflow_id"], row["workflow_version"], row["status"]) == (
            "steps", "2", "completed",
        )  # fmt: skip
        assert row["duration_ms"] >= 0

        by_status = pages(c, "/views/executions", "executions", status="paused", limit=2)
        assert {r["execution_id"] for r in by_status} >= set(paused)
        assert {r["status"] for r in by_status} == {"paused"}
        by_flow = pages(c, "/views/executions", "executions", workflow_id="steps", limit=2)
        assert {r["execution_id"] for r in by_flow} == set(done)
        search = pages(c, "/views/executions", "executions", q="PAY-3")  # any case
        assert [r["execution_id"] for r in search] == ["ui-pay-3"]
        future = c.get("/views/executions", params={"since": "2999-01-01T00:00:00Z"}).json()
        assert future["executions"] == [] and future["next_cursor"] is None
        past = pages(c, "/views/executions", "executions", until="2999-01-01T00:00:00+01:00")
        assert len(past) == len(everything)

        counts = c.get("/views/execution-counts").json()
        assert counts["counts"]["paused"] >= 5 and counts["counts"]["completed"] >= 3
        assert counts["total"] == len(everything)
        flow_counts = c.get("/views/execution-counts", params={"workflow_id": "steps"}).json()
        assert flow_counts["counts"]["completed"] == 3 and flow_counts["total"] == 3

        approvals = pages(c, "/views/approvals", "approvals", limit=2)
        mine = [a for a in approvals if a["execution_id"] in paused]
        assert [a["execution_id"] for a in mine] == paused  # oldest run first, each once
        assert {a["description"] for a in mine} == {"Pay the invoice?"}


def test_dead_letters_queues_and_timeline(engine: Any) -> None:
    with engine.client() as c:
        broken = start(c, "broken", 7, execution_id="ui-broken")
        steps = start(c, "steps", 100, execution_id="ui-steps-t")
        failed = wait_until(lambda: status_is(c, broken, "failed"), "broken run fails")
        assert "boom: 7" in failed["error"]
        wait_until(lambda: status_is(c, steps, "completed"), "steps completes")

        dead = pages(c, "/views/work-items", "work_items", status="dead")
        [item] = [d for d in dead if d["execution_id"] == broken]
        assert (item["node_id"], item["attempt"]) == ("only", 2)
        assert "boom" in item["last_error"]
        journal = c.get(f"/executions/{broken}/events").json()["events"]
        scheduled = next(e for e in journal if e["kind"]["type"] == "node_scheduled")
        assert item["fork_at_seq"] == scheduled["sequence"] - 1

        queues = c.get("/views/queues").json()
        assert any(q["dead"] >= 1 for q in queues["queues"])
        assert isinstance(queues["workers"], list)

        rows = c.get(f"/views/executions/{steps}/timeline").json()["rows"]
        second = [r for r in rows if r["node_id"] == "second"]
        assert [(r["attempt"], r["outcome"]) for r in second] == [
            (1, "retrying"), (2, "completed"),
        ]  # fmt: skip
        assert "ConnectionError" in (second[0]["error_type"] or "")
        for r in rows:
            assert r["queued_at_ms"] <= r["started_at_ms"] <= r["ended_at_ms"]
            assert r["queue_wait_ms"] >= 0 and r["run_ms"] >= 0 and r["worker_id"]
        failed_rows = c.get(f"/views/executions/{broken}/timeline").json()["rows"]
        assert "ValueError: boom: 7" in failed_rows[-1]["traceback"]

        paused = start(c, "pay", 1, execution_id="ui-pay-timeline")
        wait_until(lambda: status_is(c, paused, "paused"), "paused")
        [wait] = c.get(f"/views/executions/{paused}/timeline").json()["rows"]
        assert (wait["kind"], wait["outcome"], wait["ended_at_ms"]) == ("approval", "waiting", None)
        c.post(f"/executions/{paused}/approve", json={"decision": "approved", "user_id": "ann"})
        wait_until(lambda: status_is(c, paused, "completed"), "approved run completes")
        rows = c.get(f"/views/executions/{paused}/timeline").json()["rows"]
        assert (rows[0]["outcome"], rows[0]["decided_by"]) == ("approved", "ann")
        assert rows[1]["node_id"] == "add" and rows[1]["outcome"] == "completed"


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/views/executions", {"limit": 0}, "limit must be 1-500"),
        ("/views/executions", {"limit": 501}, "limit must be 1-500"),
        ("/views/executions", {"status": "sleeping"}, "status must be one of"),
        ("/views/executions", {"since": "yesterday"}, "since must be an RFC 3339 time"),
        ("/views/executions", {"until": "2026-13-01"}, "until must be an RFC 3339 time"),
        ("/views/executions", {"cursor": "not-a-cursor!"}, "cursor 'not-a-cursor!'"),
        ("/views/executions", {"cursor": "WyJ4IiwxXQ"}, "is not one this API gave"),
        ("/views/executions", {"q": "x" * 201}, "q (an id search)"),
        ("/views/execution-counts", {"since": "soon"}, "since must be"),
        ("/views/approvals", {"limit": 1000}, "limit must be 1-500"),
        ("/views/approvals", {"cursor": "%%%"}, "is not one this API gave"),
        ("/views/work-items", {"status": "gone"}, "status must be one of"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    engine: Any, path: str, params: dict[str, Any], named: str
) -> None:
    with engine.client() as c:
        r = c.get(path, params=params)
        assert r.status_code == 422, r.text
        assert named in r.json()["error"]


def test_token_guards_every_view_but_not_the_page(engine: Any) -> None:
    with httpx.Client(base_url=engine.url) as anonymous:
        for path in ("/views/executions", "/views/execution-counts", "/views/approvals",
                     "/views/work-items", "/views/queues", "/whoami",
                     "/views/executions/ui-pay-0/timeline"):  # fmt: skip
            r = anonymous.get(path)
            assert r.status_code == 401, (path, r.text)
            assert "error" in r.json()
        page = anonymous.get("/ui")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert 'src="/ui/static/app.js"' in page.text  # package data, never a CDN
        assert "http" not in page.text.replace("http-equiv", "")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert (
            anonymous.get("/ui/static/app.js").headers["content-type"].startswith("text/javascript")
        )
        missing = anonymous.get("/ui/static/nothing.js")
        assert missing.status_code == 404 and "nothing.js" in missing.json()["error"]
        # A page elsewhere cannot drive the engine through the visitor's browser.
        foreign = anonymous.get("/ui/", headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
    with engine.client() as c:
        assert c.get("/whoami").json() == {"user_id": None, "roles": [], "token_required": True}
        assert c.get("/views/executions/nope/timeline").status_code == 404


def test_page_served_without_a_token_configured(tmp_path: Path) -> None:
    with ui_engine(tmp_path) as e, httpx.Client(base_url=e.url) as c:
        assert c.get("/whoami").json()["token_required"] is False
        assert c.get("/views/executions").status_code == 200
        assert c.get("/ui/").status_code == 200
