"""``GET /metrics`` of a real ``tether dev``: behind the token, and counting what ran."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from test_server_http import ir_of, running_engine, wait_terminal

TOKEN = "metrics-test-token-0123456789"
FLOW = """
workflow: {id: metered, version: "1", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: limited}
  limited: {type: tool, tool: limited_once, input: {n: $n}, output_key: n, next: last}
  last:
    type: tool
    tool: fails_when_big
    input: {n: $n}
    output_key: n
    retry: {max_attempts: 3, backoff_initial_secs: 0.01}
    next: end
"""


def scrape(c: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_need_the_token_and_count_what_ran(tmp_path: Path) -> None:
    with running_engine(tmp_path, {"TETHER_TOKEN": TOKEN}) as e:
        assert httpx.get(e.url + "/metrics").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=e.url, headers=auth, timeout=10) as c:
            assert c.post("/workflows", json={"ir": ir_of(FLOW)}).status_code == 201
            ids = [
                c.post("/executions", json={"workflow_id": "metered", "input": {"n": n}}).json()[
                    "execution_id"
                ]
                for n in (0, 1, 10)
            ]
            statuses = sorted(wait_terminal(c, i)["status"] for i in ids)
            assert statuses == ["completed", "completed", "failed"]
            got = scrape(c)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert value("tether_executions_started_total") == 3
    assert value("tether_executions_ended_total", status="completed") == 2
    assert value("tether_executions_ended_total", status="failed") == 1
    assert value("tether_executions", status="completed") == 2
    assert value("tether_executions", status="failed") == 1
    assert value("tether_executions", status="running") == 0
    # 3 runs x 3 nodes, each run parked once at `limited`, the big one failed `last` 3 times.
    assert value("tether_steps_finished_total", outcome="completed") == 8
    assert value("tether_steps_finished_total", outcome="failed") == 3
    assert value("tether_steps_finished_total", outcome="parked") == 3
    assert value("tether_steps_finished_total", outcome="cancelled") == 0
    assert value("tether_steps_scheduled_total") == 11  # a park keeps its attempt
    assert value("tether_parks_total") == 3
    assert value("tether_step_duration_seconds_count") == 11
    assert value("tether_leases_granted_total") == 14  # 11 hand-outs, 3 granted again
    assert value("tether_leases_reclaimed_total") == 0
    assert value("tether_lease_reports_refused_total") == 0
    assert value("tether_journal_commits_total") > 0
    assert value("tether_journal_rows_total") >= value("tether_journal_commits_total")
    assert value("tether_workers") >= 1
    assert value("tether_worker_free_credit") >= 1
