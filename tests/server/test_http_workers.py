"""The HTTP worker protocol against a real ``tether dev``: the ``jamjet worker`` command runs a
jamjet-SDK workflow's steps, and a hand-driven worker checks fences, heartbeats, failures and
lease reclaim (I5: a stale worker's late report is refused and nothing of it is applied)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server_http import DEADLINE, HERE, Engine, running_engine, wait_terminal

from tether.server.lease_tokens import LeaseKey

#: The engine's TETHER_TOKEN (every HTTP worker holds it).
TOKEN = "http-worker-tests"
#: The engine's TETHER_LEASE_KEY: tests know it, as no worker does, so they can sign a token
#: for a lease they were not handed (a stale fence, another owner) and see it refused.
LEASE_SECRET = "lease-secret-only-the-engine-holds-0123456789"
KEY = LeaseKey.for_engine(LEASE_SECRET)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    env = {
        "TETHER_HTTP_LEASE_TTL_MS": "800",
        "TETHER_TOKEN": TOKEN,
        "TETHER_LEASE_KEY": LEASE_SECRET,
    }
    with running_engine(tmp_path, env) as e:
        yield e


def client(engine: Engine, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=engine.url, timeout=10, headers=headers)


def register_jamjet_flow(c: httpx.Client) -> None:
    sys.path.insert(0, str(HERE))
    try:
        import jamjet_flow
    finally:
        sys.path.remove(str(HERE))
    r = c.post("/workflows", json={"ir": jamjet_flow.flow.compile()})
    assert r.status_code == 201, r.text


def start(c: httpx.Client, n: int) -> str:
    r = c.post("/executions", json={"workflow_id": "jj_flow", "input": {"n": n}})
    assert r.status_code == 201, r.text
    execution_id: str = r.json()["execution_id"]
    return execution_id


def claim(c: httpx.Client, worker: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        r = c.post("/work-items/claim", json={"worker_id": worker, "queue_types": ["general"]})
        assert r.status_code == 200, r.text
        if r.json()["claimed"]:
            item: dict[str, Any] = r.json()["work_item"]
            return item
    raise AssertionError("nothing to claim")


def test_the_jamjet_worker_command_runs_python_fn_steps_I3(engine: Engine, tmp_path: Path) -> None:
    with client(engine) as c:
        register_jamjet_flow(c)
        ids = [start(c, n) for n in (1, 2, 3)]
        worker = run_jamjet_worker(engine, tmp_path / "jamjet-worker.log", "jj-1")
        try:
            views = [wait_terminal(c, eid) for eid in ids]
            workers = c.get("/workers").json()["workers"]
        finally:
            worker.kill()
            worker.wait()
        for n, view in zip((1, 2, 3), views, strict=True):
            assert view["status"] == "completed", view
            assert view["current_state"]["n"] == n * 2 + 1
            assert view["current_state"]["trail"] == ["double", "add_one"]
        events = c.get(f"/executions/{ids[0]}/events").json()["events"]
        done = [e["kind"]["node_id"] for e in events if e["kind"]["type"] == "node_completed"]
        assert done == ["double", "add_one"]  # each step once
        assert any(w["worker_id"] == "http/jj-1" for w in workers)


def test_fences_heartbeats_and_failures_by_hand_I5(engine: Engine) -> None:
    with client(engine) as c:
        register_jamjet_flow(c)
        eid = start(c, 5)
        item = claim(c, "hand")
        assert (item["execution_id"], item["node_id"], item["attempt"]) == (eid, "double", 1)
        assert item["merge_state"] is True
        token = item["id"]
        assert c.post(f"/work-items/{token}/heartbeat", json={}).status_code == 200

        assert c.post("/work-items/not-a-token/complete", json={}).status_code == 404
        ref = KEY.verify(token)
        stale = KEY.sign(ref.work_item_id, ref.fence + 1, ref.owner)
        r = c.post(f"/work-items/{stale}/complete", json={"state_patch": {"n": 99}})
        assert r.status_code == 409 and "fence" in r.json()["error"]

        # A traceback, when the worker sends one, is kept with the failure (I11).
        tb = 'Traceback (most recent call last):\n  File "w.py", line 1\nOSError: flaky upstream\n'
        r = c.post(f"/work-items/{token}/fail", json={"error": "flaky upstream", "traceback": tb})
        assert r.status_code == 200 and r.json()["accepted"] is True
        r = c.post(f"/work-items/{token}/complete", json={"state_patch": {"n": 99}})
        assert r.status_code == 409  # the failed attempt's lease is over

        retry = claim(c, "hand")
        assert (retry["node_id"], retry["attempt"]) == ("double", 2)
        patch = {"n": 10, "trail": ["double"]}
        body = {"output": {"n": 10, "trail": ["double"]}, "state_patch": patch}
        r = c.post(f"/work-items/{retry['id']}/complete", json=body)
        assert r.status_code == 200, r.text
        last = claim(c, "hand")
        assert last["node_id"] == "add_one"
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 11}})
        assert r.status_code == 200, r.text
        view = wait_terminal(c, eid)
        assert view["status"] == "completed"
        assert view["current_state"] == {"n": 11, "trail": ["double"]}
        failed = [
            e["kind"] for e in c.get(f"/executions/{eid}/events").json()["events"]
            if e["kind"]["type"] == "node_failed"
        ]  # fmt: skip
        assert [(f["error"], f["traceback"]) for f in failed] == [("flaky upstream", tb)]
    # ... and in the engine's log, where an operator looks first.
    assert "OSError: flaky upstream" in engine.log.read_text()


def test_a_worker_that_goes_silent_loses_its_lease_and_its_late_report_I5(
    engine: Engine,
) -> None:
    with client(engine) as c:
        register_jamjet_flow(c)
        eid = start(c, 1)
        first = claim(c, "silent")  # then nothing from it for longer than the 0.8 s lease
        second = claim(c, "alive")
        assert (second["node_id"], second["attempt"]) == ("double", 2)
        r = c.post(f"/work-items/{first['id']}/complete", json={"state_patch": {"n": 50}})
        assert r.status_code == 409
        r = c.post(f"/work-items/{second['id']}/complete", json={"state_patch": {"n": 2}})
        assert r.status_code == 200, r.text
        last = claim(c, "alive")
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 3}})
        assert r.is_success
        view = wait_terminal(c, eid)
        assert view["current_state"]["n"] == 3  # the stale report's 50 was never applied
        kinds = [e["kind"] for e in c.get(f"/executions/{eid}/events").json()["events"]]
        reclaimed = [k for k in kinds if k["type"] == "node_failed"]
        assert len(reclaimed) == 1 and "lease expired" in reclaimed[0]["error"]


def test_a_claim_that_finds_nothing_takes_its_credit_back_I5(engine: Engine) -> None:
    """A worker that polled once and left must not be granted the next item: it would sit
    with it for the lease lifetime and cost the step an attempt."""
    with client(engine) as c:
        register_jamjet_flow(c)
        r = c.post("/work-items/claim", json={"worker_id": "gone", "queue_types": ["general"]})
        assert r.json() == {"claimed": False}
        start(c, 1)
        item = claim(c, "there")
        assert (item["node_id"], item["attempt"]) == ("double", 1)
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 2}})
        assert r.status_code == 200, r.text


def test_claim_and_report_bodies_are_checked(engine: Engine) -> None:
    with client(engine) as c:
        assert c.post("/work-items/claim", json={"queue_types": ["general"]}).status_code == 400
        r = c.post("/work-items/claim", json={"worker_id": "", "queue_types": ["general"]})
        assert r.status_code == 422 and "worker_id" in r.json()["error"]
        r = c.post("/work-items/claim", json={"worker_id": "w", "queue_types": []})
        assert r.status_code == 422 and "queue" in r.json()["error"]
        r = c.post("/work-items/claim", json={"worker_id": "w", "queue_types": ["general"]})
        assert r.json() == {"claimed": False}


def test_a_forged_token_cannot_act_for_the_pool_or_a_finished_lease_I5_I10(
    engine: Engine,
) -> None:
    with client(engine) as c:
        for owner in ("local", "zmq-worker"):  # not an HTTP worker's lease: refused, no effect
            forged = KEY.sign("exec_x/a/1", 1, owner)
            assert c.post(f"/work-items/{forged}/heartbeat", json={}).status_code == 404
            assert c.post(f"/work-items/{forged}/complete", json={}).status_code == 404
        local = [w for w in c.get("/workers").json()["workers"] if w["worker_id"] == "local"]
        assert local and local[0]["queues"] == ["*"] and local[0]["free_slots"] > 0

        register_jamjet_flow(c)
        eid = start(c, 2)
        item = claim(c, "hb")
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 4}})
        assert r.status_code == 200, r.text
        r = c.post(f"/work-items/{item['id']}/heartbeat", json={})
        assert r.status_code == 409 and "already reported" in r.json()["error"]
        # Sent again with the same id: the first answer, nothing applied twice.
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 99}})
        assert r.status_code == 200 and r.json()["accepted"] is True
        r = c.post(f"/work-items/{item['id']}/fail", json={"error": "late"})
        assert r.status_code == 409 and "already reported as completed" in r.json()["error"]
        last = claim(c, "hb")
        r = c.post(f"/work-items/{last['id']}/complete", json={"state_patch": {"n": 5}})
        assert r.is_success
        assert wait_terminal(c, eid)["current_state"]["n"] == 5


def test_a_completion_resent_after_an_engine_restart_is_answered_accepted_I3(
    engine: Engine,
) -> None:
    with client(engine) as c:
        register_jamjet_flow(c)
        eid = start(c, 3)
        item = claim(c, "resend")
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 6}})
        assert r.status_code == 200, r.text
    assert engine.stop() == 0
    engine.start()  # same journal, same port: the gateway's memory of the answer is gone
    with client(engine) as c:
        r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 6}})
        assert r.status_code == 200 and r.json()["accepted"] is True
        events = c.get(f"/executions/{eid}/events").json()["events"]
        done = [e for e in events if e["kind"]["type"] == "node_completed"]
        assert [e["kind"]["node_id"] for e in done] == ["double"]  # applied once


def test_an_http_workers_lease_outlives_the_restarted_engines_adoption_grace_I5(
    tmp_path: Path,
) -> None:
    """After a SIGKILL the scheduler gives adopted leases a short grace for their worker to
    speak; the HTTP API (which loads after the worker port) speaks for its workers' leases at
    once, so a step an HTTP worker runs across the restart is not taken back and run again:
    its completion, past the grace, is applied."""
    env = {"TETHER_TOKEN": TOKEN, "TETHER_LEASE_KEY": LEASE_SECRET}  # the default 30 s TTL
    with running_engine(tmp_path, env) as engine:
        with client(engine) as c:
            register_jamjet_flow(c)
            eid = start(c, 3)
            item = claim(c, "across")
        engine.stop(signal.SIGKILL)
        engine.start()
        # Past the adoption grace (0.5 s) and an adopted lease's silence (1 s): a lease
        # nobody spoke for would be reclaimed and its step granted again by now.
        past_grace = time.monotonic() + 2.5
        while time.monotonic() < past_grace:
            time.sleep(0.05)
        with client(engine) as c:
            r = c.post(f"/work-items/{item['id']}/complete", json={"state_patch": {"n": 6}})
            assert r.status_code == 200 and r.json()["accepted"] is True, r.text
            events = c.get(f"/executions/{eid}/events").json()["events"]
        kinds = [e["kind"] for e in events]
        journaled = ("node_scheduled", "node_completed", "node_failed")
        doubles = [
            (k["type"], k["attempt"])
            for k in kinds
            if k.get("node_id") == "double" and k["type"] in journaled
        ]
        assert doubles == [("node_scheduled", 1), ("node_completed", 1)]  # granted once, applied


def run_jamjet_worker(
    engine: Engine,
    log: Path,
    worker_id: str,
    token: str | None = TOKEN,
    module: str = "jamjet_flow",
) -> subprocess.Popen[bytes]:
    """The ``jamjet worker`` command serving tests/server/jamjet_flow.py on ``engine`` (its
    client sends ``JAMJET_TOKEN`` as the bearer token)."""
    env = {k: v for k, v in os.environ.items() if k != "JAMJET_TOKEN"}
    if token:
        env["JAMJET_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-c", "from jamjet.cli.main import app; app()", "worker",
         module, "--name", "flow", "--runtime", engine.url,
         "--poll-interval", "0.05", "--worker-id", worker_id],
        cwd=HERE, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_a_step_waiting_for_a_jamjet_worker_survives_an_engine_restart_I3(
    engine: Engine, tmp_path: Path
) -> None:
    """After a restart the in-process pool joins before the recovered runs load their
    workflows: it must still leave the remote-only queue to HTTP workers, not take the step
    and fail it for want of a function."""
    with client(engine) as c:
        register_jamjet_flow(c)
        eid = start(c, 4)  # no worker yet: 'double' waits on the 'general' queue
    assert engine.stop() == 0
    engine.start()
    worker = run_jamjet_worker(engine, tmp_path / "jamjet-worker.log", "after-restart")
    try:
        with client(engine) as c:
            view = wait_terminal(c, eid)
    finally:
        worker.kill()
        worker.wait()
    assert view["status"] == "completed", view
    assert view["current_state"] == {"n": 9, "trail": ["double", "add_one"]}


def test_a_jamjet_worker_that_does_not_serve_a_step_declines_it_spending_no_attempt_I5(
    engine: Engine, tmp_path: Path
) -> None:
    """A worker handed another workflow's step answers `unknown node_id`: the step parks
    (node_parked, attempt kept) until a worker that serves it takes it; the run completes."""
    with client(engine) as c:
        sys.path.insert(0, str(HERE))
        try:
            import jamjet_flow_b
        finally:
            sys.path.remove(str(HERE))
        assert c.post("/workflows", json={"ir": jamjet_flow_b.flow.compile()}).status_code == 201
        eid = c.post("/executions", json={"workflow_id": "jj_flow_b", "input": {"n": 2}}).json()[
            "execution_id"
        ]
        wrong = run_jamjet_worker(engine, tmp_path / "a.log", "wa")  # serves jj_flow only
        try:
            deadline = time.monotonic() + DEADLINE
            while not _kinds(c, eid, "node_parked") and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            wrong.kill()
            wrong.wait()
        right = run_jamjet_worker(engine, tmp_path / "b.log", "wb", module="jamjet_flow_b")
        try:
            view = wait_terminal(c, eid)
        finally:
            right.kill()
            right.wait()
        assert view["status"] == "completed" and view["current_state"]["n"] == 6, view
        [parked, *_] = _kinds(c, eid, "node_parked")
        assert "worker http/wa does not serve this step" in parked["error"]
        assert not _kinds(c, eid, "node_failed")
        assert [k["attempt"] for k in _kinds(c, eid, "node_completed")] == [1]


def _kinds(c: httpx.Client, eid: str, kind: str) -> list[dict[str, Any]]:
    events = c.get(f"/executions/{eid}/events").json()["events"]
    return [e["kind"] for e in events if e["kind"]["type"] == kind]


def test_two_jamjet_workers_on_one_queue_each_run_their_own_workflows_steps_I5(
    engine: Engine, tmp_path: Path
) -> None:
    """Each worker is handed the other workflow's steps at first and declines them; a
    declined step is never granted to that worker again, so it reaches the one that serves
    it: no failed attempt, every run completes."""
    with client(engine) as c:
        register_jamjet_flow(c)
        sys.path.insert(0, str(HERE))
        try:
            import jamjet_flow_b
        finally:
            sys.path.remove(str(HERE))
        assert c.post("/workflows", json={"ir": jamjet_flow_b.flow.compile()}).status_code == 201
        ids = [start(c, n) for n in (1, 2, 3)] + [
            c.post("/executions", json={"workflow_id": "jj_flow_b", "input": {"n": n}}).json()[
                "execution_id"
            ]
            for n in (1, 2, 3)
        ]
        workers = [
            run_jamjet_worker(engine, tmp_path / "a.log", "wa"),
            run_jamjet_worker(engine, tmp_path / "b.log", "wb", module="jamjet_flow_b"),
        ]
        try:
            views = [wait_terminal(c, eid) for eid in ids]
        finally:
            for w in workers:
                w.kill()
                w.wait()
        assert [v["status"] for v in views] == ["completed"] * 6
        for eid in ids:
            assert not _kinds(c, eid, "node_failed")
            declined = [(k["node_id"], k["error"].split("worker ")[1].split()[0])
                        for k in _kinds(c, eid, "node_parked")]  # fmt: skip
            assert len(declined) == len(set(declined))  # a step, at most once per worker
