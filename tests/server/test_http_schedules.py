"""Cron schedules over the REST API and ``tether schedules``, against a real ``tether dev``:
created for a registered workflow, listed, paused, resumed and deleted; refused with the
field's name; behind the bearer token like every write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from test_cli_commands import tether
from test_server_http import EXAMPLES, ir_of, running_engine

TOKEN = "schedules-test-token-0123456789"
#: 29 February: no fire of it can start a run while a test looks.
LEAP_DAY = "0 0 29 2 *"


def _schedule(**changes: Any) -> dict[str, Any]:
    body = {"schedule_id": "nightly", "cron": LEAP_DAY, "workflow_id": "counter",
            "input": {"n": 1}, "timezone": "Europe/Paris"}  # fmt: skip
    return {**body, **changes}


def test_a_schedule_is_created_listed_paused_resumed_and_deleted(tmp_path: Path) -> None:
    with running_engine(tmp_path) as e, httpx.Client(base_url=e.url) as c:
        assert c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).is_success
        made = c.post("/schedules", json=_schedule())
        assert made.status_code == 201, made.text
        view = made.json()
        assert (view["schedule_id"], view["workflow_id"], view["workflow_version"]) == (
            "nightly", "counter", "1",
        )  # fmt: skip
        assert (view["input"], view["paused"], view["last_error"]) == ({"n": 1}, False, None)
        assert view["next_fire_at"].endswith("+00:00") and "-02-" in view["next_fire_at"]
        again = c.post("/schedules", json=_schedule())  # declared again: nothing changes
        assert again.status_code == 201 and again.json() == view
        assert c.get("/schedules").json()["schedules"] == [view]
        table = tether(e.url, "schedules").stdout.splitlines()
        assert table[0].split() == ["SCHEDULE", "WORKFLOW", "CRON", "NEXT", "FIRE", "STATE"]
        assert table[1].split()[:2] == ["nightly", "counter@1"]
        assert table[1].rstrip().endswith("active") and "(Europe/Paris)" in table[1]
        assert c.post("/schedules/nightly/pause").json()["paused"] is True
        assert c.post("/schedules/nightly/resume").json()["paused"] is False
        assert c.post("/schedules/nosuch/pause").status_code == 404
        assert c.delete("/schedules/nightly").json() == {"schedule_id": "nightly", "deleted": True}
        assert c.delete("/schedules/nightly").json()["deleted"] is False
        assert c.get("/schedules").json()["schedules"] == []
        assert c.get("/executions").json()["executions"] == []  # nothing fired


def test_a_bad_schedule_is_refused_naming_the_field_I10(tmp_path: Path) -> None:
    with running_engine(tmp_path) as e, httpx.Client(base_url=e.url) as c:
        assert c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).is_success
        for changes, status, says in [
            ({"schedule_id": "a/b"}, 422, "schedule_id 'a/b'"),
            ({"schedule_id": "x" * 101}, 422, "1-100 characters"),
            ({"cron": "every day"}, 422, "cron: 'every day'"),
            ({"cron": "0 0 30 2 *"}, 422, "cron: '0 0 30 2 *'"),
            ({"timezone": "Mars/Olympus"}, 422, "timezone: 'Mars/Olympus'"),
            ({"missed": "all"}, 422, "missed: expected one of"),
            ({"input": {"n": "one"}}, 422, "n"),
            ({"workflow_id": "nosuch"}, 404, "nosuch"),
            ({"workflow_version": "9"}, 404, "counter@9"),
        ]:
            refused = c.post("/schedules", json=_schedule(**changes))
            assert refused.status_code == status, (changes, refused.text)
            assert says in refused.json()["error"], (changes, refused.text)
        assert c.get("/schedules").json()["schedules"] == []


def test_schedules_need_the_token_and_an_engine_that_runs_cron_I14(tmp_path: Path) -> None:
    env = {"TETHER_TOKEN": TOKEN, "TETHER_EMBED_CRON": "false"}
    with running_engine(tmp_path, env) as e, httpx.Client(base_url=e.url) as c:
        assert c.post("/schedules", json=_schedule()).status_code == 401
        assert c.get("/schedules").status_code == 401
        assert c.delete("/schedules/nightly").status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        refused = c.post("/schedules", json=_schedule(), headers=auth)
        assert refused.status_code == 409 and "TETHER_EMBED_CRON" in refused.json()["error"]
        assert c.get("/schedules", headers=auth).status_code == 409
