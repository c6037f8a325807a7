"""Time travel through ``tether dev``: the states routes, the fork route, ``forked_from`` on
the forked run's view, and ``tether replay`` / ``tether fork`` as a user runs them; bad forks
are one clear error and write nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli_commands import tether
from test_server_http import DEADLINE, Engine, ir_of, running_engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path) as e:
        yield e


def _finished(client: httpx.Client, eid: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        view: dict[str, Any] = client.get(f"/executions/{eid}").json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return view
        time.sleep(0.02)  # polling the engine's answer, with a deadline
    raise AssertionError(f"{eid} did not finish")


def test_states_and_fork_routes(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=DEADLINE) as client:
        ir = ir_of(ROOT / "examples" / "counter.yaml")
        assert client.post("/workflows", json={"ir": ir}).status_code == 201
        started = client.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}})
        eid = started.json()["execution_id"]
        assert _finished(client, eid)["output"] == {"n": 3}
        events = client.get(f"/executions/{eid}/events").json()["events"]
        done = [e["sequence"] for e in events if e["kind"]["type"] == "node_completed"]
        first_done = done[0]
        one = client.get(f"/executions/{eid}/states", params={"at": first_done}).json()
        assert one["seq"] == first_done and one["record"]["kind"]["type"] == "node_completed"
        assert one["state"]["data"] == {"n": 1}
        assert {"op": "replace", "path": "/data/n", "old": 0, "value": 1} in one["diff"]
        assert one["last_seq"] == len([e for e in events if not e.get("derived")])
        every = client.get(f"/executions/{eid}/states").json()["states"]
        assert [s["seq"] for s in every] == list(range(1, one["last_seq"] + 1))
        assert every[first_done - 1]["diff"] == one["diff"] and "state" not in every[0]
        assert "state" in client.get(f"/executions/{eid}/states?full=true").json()["states"][0]

        forked = client.post(f"/executions/{eid}/fork", json={"at_seq": first_done})
        assert forked.status_code == 201, forked.text
        body = forked.json()
        assert body["forked_from"] == eid and body["at_seq"] == first_done
        assert body["runs_again"] == [] and body["finished_in_origin"] == []
        view = _finished(client, body["execution_id"])
        assert view["output"] == {"n": 3}
        assert view["forked_from"] == {"execution_id": eid, "at_seq": first_done}
        assert client.get(f"/executions/{eid}").json()["forked_from"] is None

        listed = len(client.get("/executions").json()["executions"])
        for path, payload, status, words in (
            ("/executions/exec_nope/fork", {"at_seq": 1}, 404, "no execution 'exec_nope'"),
            (f"/executions/{eid}/fork", {"at_seq": 999}, 404, "has no record 999"),
            (f"/executions/{eid}/fork", {"at_seq": 0}, 404, "has no record 0"),
            (f"/executions/{eid}/fork", {"at_seq": one["last_seq"]}, 422, "ends the run"),
            (f"/executions/{eid}/fork", {"at_seq": "x"}, 400, "at_seq"),
            (f"/executions/{eid}/fork", {}, 400, "at_seq"),
            (f"/executions/{eid}/fork", {"at_seq": 2, "execution_id": "../x"}, 422, "execution id"),
        ):
            answer = client.post(path, json=payload)
            assert answer.status_code == status, (payload, answer.text)
            assert words in answer.text and "error" in answer.json(), answer.text
            assert "Traceback" not in answer.text
        assert len(client.get("/executions").json()["executions"]) == listed  # nothing written
        nosuch = client.get(f"/executions/{eid}/states", params={"at": 999})
        assert nosuch.status_code == 404 and "has no record 999" in nosuch.json()["error"]
        unknown = client.get("/executions/exec_nope/states")
        assert unknown.status_code == 404


def test_replay_and_fork_commands(engine: Engine) -> None:
    path = str(ROOT / "examples" / "counter.yaml")
    ran = tether(engine.url, "run", path, "-i", '{"n": 0}', "--json")
    assert ran.returncode == 0, ran.stderr
    eid = json.loads(ran.stdout)["execution_id"]
    shown = tether(engine.url, "replay", eid)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["1", "execution_started"]
    assert any("node_completed" in ln and "data.n: 0 → 1" in ln for ln in lines)
    assert lines[-1].split()[1] == "execution_completed"
    as_json = json.loads(tether(engine.url, "replay", eid, "--json").stdout)
    assert as_json["states"][-1]["state"]["status"] == "completed"
    at = json.loads(tether(engine.url, "replay", eid, "--at", "2", "--json").stdout)
    assert at["seq"] == 2 and "state" in at
    forked = tether(engine.url, "fork", eid, "--at", "2")
    assert forked.returncode == 0, forked.stderr
    assert f"forked from {eid} at record 2: running; runs again: first" in forked.stdout
    fork_id = forked.stdout.split()[0]
    inspected = tether(engine.url, "inspect", fork_id)
    assert f"forked from {eid} at record 2" in inspected.stdout
    bad = tether(engine.url, "fork", eid, "--at", "999")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "has no record 999" in bad.stderr
    gone = tether(engine.url, "replay", "exec_nope")
    assert gone.returncode == 1 and "no execution 'exec_nope'" in gone.stderr


LOOP = """
workflow:
  id: loop
  version: "1"
  start: tick
  state_schema: {n: {type: integer}}
  continue_as_new: {max_records: 12}
nodes:
  tick: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: more}
  more:
    type: branch
    cases: [{when: "n < 20", to: tick}]
    default: end
"""


def test_a_fork_of_a_continued_segment_over_http(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url, timeout=DEADLINE) as client:
        assert client.post("/workflows", json={"ir": ir_of(LOOP)}).status_code == 201
        started = client.post("/executions", json={"workflow_id": "loop", "input": {"n": 0}})
        eid = started.json()["execution_id"]
        view = _finished(client, eid)
        second = view["segment_id"]  # the last segment, a later one than the first
        assert second != eid and view["current_state"]["n"] == 20
        # That segment's own journal, and a record in its middle.
        events = client.get(f"/executions/{second}/events").json()["events"]
        assert events[0]["kind"]["type"] == "segment_started"
        at = next(e["sequence"] for e in events if e["kind"]["type"] == "node_completed")
        forked = client.post(f"/executions/{second}/fork", json={"at_seq": at})
        assert forked.status_code == 201, forked.text
        body = forked.json()
        assert body["forked_from"] == second and body["at_seq"] == at
        done = _finished(client, body["execution_id"])
        assert done["current_state"]["n"] == 20
        assert done["forked_from"] == {"execution_id": second, "at_seq": at}
        last = max(e["sequence"] for e in events if not e.get("derived"))
        ended = client.post(f"/executions/{second}/fork", json={"at_seq": last})
        assert ended.status_code == 422 and "ends the run (completed)" in ended.json()["error"]
