"""The engine server as users run it: ``tether dev`` in a subprocess, driven over HTTP on
loopback, by plain requests and by the ``jamjet`` SDK's own client."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tether.ir import compile_yaml_file, compile_yaml_text, workflow_from_ir
from tether.ir.identity import workflow_digest
from tether.testing.loopback import free_loopback_port as free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "examples"
DEADLINE = 30.0

APPROVAL = """
workflow: {id: pay, version: "1", start: review, state_schema: {n: {type: integer}}}
nodes:
  review:
    type: human_approval
    description: "Pay?"
    next:
      - {to: add, when: "review.decision == 'approved'"}
      - {to: end}
  add: {type: tool, tool: add_one, input: {n: $n}, output_key: n, next: end}
"""


def edited_counter() -> str:
    """examples/counter.yaml with its last node changed from add_one to double (n ends at 4
    from 0), under the same id and version."""
    head, _, third = (EXAMPLES / "counter.yaml").read_text().partition("  third:")
    return head + "  third:" + third.replace("tool: add_one", "tool: double")


class Engine:
    def __init__(
        self,
        tmp: Path,
        env: dict[str, str] | None = None,
        modules: str = "tools,server_tools",
        cwd: Path = EXAMPLES,
    ) -> None:
        self.modules = modules
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"dev-{self.port}.log"
        self.env = {
            **os.environ,
            "TETHER_DATABASE_URL": f"sqlite:///{tmp / 'engine.db'}",
            "TETHER_WORKER_PORT": "0",
            # ROOT too: the engine must run this checkout's tether, not an installed one.
            "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(HERE), str(ROOT)]),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Engine:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "dev", "--modules", self.modules,
             "--port", str(self.port)],
            cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"tether dev did not answer /health: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=DEADLINE)

    def kill(self) -> None:
        """SIGKILL the engine if it still runs (test cleanup)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running_engine(
    tmp: Path,
    env: dict[str, str] | None = None,
    modules: str = "tools,server_tools",
    cwd: Path = EXAMPLES,
) -> Iterator[Engine]:
    """A started engine (in ``cwd``), killed on the way out whatever the test did to it."""
    e = Engine(tmp, env, modules, cwd).start()
    try:
        yield e
    finally:
        e.kill()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path) as e:
        yield e


def ir_of(path_or_text: Path | str) -> dict[str, Any]:
    wf = (
        compile_yaml_file(path_or_text)
        if isinstance(path_or_text, Path)
        else compile_yaml_text(path_or_text, "inline.yaml")
    )
    out: dict[str, Any] = msgspec.to_builtins(wf)
    return out


def wait_terminal(c: httpx.Client, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        view: dict[str, Any] = c.get(f"/executions/{execution_id}").json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return view
        time.sleep(0.02)
    raise AssertionError(f"{execution_id} did not finish")


def test_register_start_follow_and_read_events(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        reg = c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")})
        assert reg.status_code == 201
        assert reg.json() == {
            "workflow_id": "counter",
            "version": "1",
            "digest": workflow_digest(compile_yaml_file(EXAMPLES / "counter.yaml")),
        }
        started = c.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}})
        assert started.status_code == 201
        eid = started.json()["execution_id"]
        view = wait_terminal(c, eid)
        assert (view["status"], view["current_state"], view["output"]) == (
            "completed",
            {"n": 3},
            {"n": 3},
        )
        events = c.get(f"/executions/{eid}/events").json()["events"]
        assert events[0]["kind"]["type"] == "workflow_started"
        assert events[0]["kind"]["initial_input"] == {"n": 0}
        journaled = [e for e in events if not e.get("derived")]
        assert [e["sequence"] for e in journaled] == list(range(1, len(journaled) + 1))
        done = [e for e in events if e["kind"]["type"] == "node_completed"]
        assert [e["node_id"] for e in done] == ["first", "second", "third"]
        # node_started (what jamjet counts as steps) comes right before each step's outcome,
        # under its sequence number, with who ran it and when it started.
        for started, outcome in itertools.pairwise(events):
            if outcome["kind"]["type"] == "node_completed" and outcome["kind"]["dispatch"]:
                assert started["kind"]["type"] == "node_started"
                assert started["sequence"] == outcome["sequence"]
                assert started["kind"]["worker_id"] == "local"
                assert started["created_at"] <= outcome["created_at"]
        listed = c.get("/executions", params={"status": "completed", "limit": 10}).json()
        assert [x["execution_id"] for x in listed["executions"]] == [eid]
        bogus = c.get("/executions", params={"status": "bogus"})
        assert bogus.status_code == 422 and "limit_exceeded" in bogus.json()["error"]
        assert c.get("/workers").json()["workers"][0]["worker_id"] == "local"
        assert "/executions" in c.get("/openapi.json").json()["paths"]


def test_approve_and_events_over_http(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        c.post("/workflows", json={"ir": ir_of(APPROVAL)}).raise_for_status()
        eid = c.post("/executions", json={"workflow_id": "pay", "input": {"n": 1}}).json()[
            "execution_id"
        ]
        deadline = time.monotonic() + DEADLINE
        while c.get(f"/executions/{eid}").json()["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pending = c.get(f"/executions/{eid}/approvals").json()["pending"]
        assert [p["node_id"] for p in pending] == ["review"]
        ok = c.post(f"/executions/{eid}/approve", json={"decision": "approved", "user_id": "al"})
        assert ok.json() == {"execution_id": eid, "node_id": "review", "accepted": True}
        assert wait_terminal(c, eid)["current_state"]["n"] == 2
        again = c.post(f"/executions/{eid}/approve", json={"decision": "approved"})
        assert again.status_code == 409 and "completed" in again.json()["error"]
        decided = c.get(f"/executions/{eid}/approvals").json()["decided"]
        assert [(d["node_id"], d["status"], d["user_id"]) for d in decided] == [
            ("review", "approved", "al")
        ]


def test_bad_requests_get_a_4xx_a_person_can_act_on_I10(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        bad_json = c.post(
            "/executions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400
        invalid = c.post(
            "/workflows", json={"ir": {**ir_of(EXAMPLES / "counter.yaml"), "start_node": "nope"}}
        )
        assert invalid.status_code == 422
        assert any(i["path"] == "start_node" for i in invalid.json()["issues"])
        unknown = c.get("/executions/exec_nope")
        assert unknown.status_code == 404 and "exec_nope" in unknown.json()["error"]
        no_wf = c.post("/executions", json={"workflow_id": "ghost", "input": {}})
        assert no_wf.status_code == 404 and "ghost" in no_wf.json()["error"]
        huge = c.post(
            "/workflows", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
        )
        assert huge.status_code == 413
        c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()
        eid = c.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}}).json()[
            "execution_id"
        ]
        wait_terminal(c, eid)
        nothing = c.post(f"/executions/{eid}/approve", json={"decision": "approved"})
        assert nothing.status_code == 409
        wrong = c.post(f"/executions/{eid}/approve", json={"decision": "maybe"})
        assert wrong.status_code == 422 and "approved, rejected" in wrong.json()["error"]


def test_a_token_guards_every_route_but_health(tmp_path: Path) -> None:
    e = Engine(tmp_path, {"TETHER_TOKEN": "s3cret-of-16-chars"}).start()
    try:
        with httpx.Client(base_url=e.url) as c:
            assert c.get("/health").status_code == 200
            assert c.get("/executions").status_code == 401
            wrong = c.get("/executions", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "Bearer" in wrong.json()["error"]
            ok = c.get("/executions", headers={"authorization": "Bearer s3cret-of-16-chars"})
            assert ok.status_code == 200
    finally:
        assert e.stop() == 0  # SIGTERM: a graceful stop


def test_an_open_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev", "--bind", "0.0.0.0"],
        env={**os.environ, "TETHER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 2
    assert "TETHER_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_registration_is_by_content_409_names_both_digests_I13(engine: Engine) -> None:
    counter = ir_of(EXAMPLES / "counter.yaml")
    moved = {**counter, "locations": {"nodes.first": {"file": "../elsewhere.yaml", "line": 9}}}
    edited = ir_of(edited_counter())
    with httpx.Client(base_url=engine.url) as c:
        posted = [c.post("/workflows", json={"ir": ir}) for ir in (counter, moved)]
        digests = {p.json()["digest"] for p in posted}
        [digest] = digests  # the same content from elsewhere: accepted, one digest
        for _ in range(2):
            refused = c.post("/workflows", json={"ir": edited})
            assert refused.status_code == 409, refused.text
            message = refused.json()["error"]
            assert digest[:19] in message and "new version" in message
            assert workflow_digest(workflow_from_ir(edited))[:19] in message
        [row] = c.get("/workflows").json()["workflows"]
        assert (row["workflow_id"], row["version"], row["digest"]) == ("counter", "1", digest)


def test_the_jamjet_sdk_client_drives_a_run_end_to_end(engine: Engine) -> None:
    from jamjet import JamjetClient

    async def scenario() -> None:
        async with JamjetClient(base_url=engine.url, timeout=10.0) as client:
            await client.health()
            reg = await client.create_workflow(ir_of(APPROVAL))
            assert reg["workflow_id"] == "pay"
            started = await client.start_execution("pay", {"n": 41})  # no version: the latest
            eid = started["execution_id"]
            with anyio.fail_after(DEADLINE):
                while (await client.get_execution(eid))["status"] != "paused":
                    await anyio.sleep(0.02)
            await client.approve(eid, "approved", comment="fine")
            with anyio.fail_after(DEADLINE):
                while (view := await client.get_execution(eid))["status"] != "completed":
                    await anyio.sleep(0.02)
            assert view["current_state"]["n"] == 42
            events = (await client.get_events(eid))["events"]
            assert events[0]["kind"]["type"] == "workflow_started"
            types = [e["kind"]["type"] for e in events]
            assert types.count("approval_received") == 1
            listed = await client.list_executions(status="completed")
            assert [x["execution_id"] for x in listed["executions"]] == [eid]

    anyio.run(scenario)


@pytest.mark.slow
def test_sigkill_the_server_with_50_runs_in_flight_restart_finishes_all_I3(
    tmp_path: Path,
) -> None:
    log = tmp_path / "effects.log"
    first = Engine(tmp_path).start()
    try:
        with httpx.Client(base_url=first.url) as c:
            c.post(
                "/workflows", json={"ir": ir_of(EXAMPLES / "slow_chain.yaml")}
            ).raise_for_status()
            ids = [
                c.post(
                    "/executions", json={"workflow_id": "slow-chain", "input": {"log": str(log)}}
                ).json()["execution_id"]
                for _ in range(50)
            ]
        deadline = time.monotonic() + DEADLINE
        while len(log.read_text().splitlines()) < 60 if log.exists() else True:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        first.stop(signal.SIGKILL)
    second = Engine(tmp_path).start()
    try:
        with httpx.Client(base_url=second.url) as c:
            for eid in ids:
                assert wait_terminal(c, eid)["status"] == "completed"
                events = c.get(f"/executions/{eid}/events").json()["events"]
                done = [
                    (e["kind"]["node_id"], e["kind"]["dispatch"])
                    for e in events
                    if e["kind"]["type"] == "node_completed"
                ]
                assert len(done) == len(set(done)) == 5, eid
    finally:
        assert second.stop() == 0
    runs = len(log.read_text().splitlines())
    assert 250 <= runs <= 250 + 50  # each step at least once; at most the in-flight ones again


def test_paging_out_of_range_is_a_422_not_a_500_I10(engine: Engine) -> None:
    # Found by the schema fuzzer: an offset past SQLite's integers answered 500.
    with httpx.Client(base_url=engine.url) as c:
        for params in ({"offset": 32589158477190044729}, {"limit": 0}, {"offset": -1}):
            got = c.get("/executions", params=params)
            assert got.status_code == 422 and "offset" in got.json()["error"]


def test_events_from_a_sequence_past_the_journals_integers_is_a_422_I10(engine: Engine) -> None:
    # Found by the schema fuzzer: a from_seq past 2**63 reached the store and answered 500.
    with httpx.Client(base_url=engine.url) as c:
        for from_seq in (2**63, 5180693156681039555862154182656, 0):
            got = c.get("/executions/e1/events", params={"from_seq": from_seq})
            assert got.status_code == 422 and "from_seq" in got.json()["error"]


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


def test_a_run_that_continued_as_new_is_followed_by_its_first_id(engine: Engine) -> None:
    with httpx.Client(base_url=engine.url) as c:
        c.post("/workflows", json={"ir": ir_of(LOOP)}).raise_for_status()
        eid = c.post("/executions", json={"workflow_id": "loop", "input": {"n": 0}}).json()[
            "execution_id"
        ]
        view = wait_terminal(c, eid)  # jamjet's clients poll the id they were given
        assert (view["execution_id"], view["status"]) == (eid, "completed")
        assert view["segment_id"] != eid and view["current_state"]["n"] == 20


def test_a_workflow_naming_an_unknown_tool_is_a_422_I10(engine: Engine) -> None:
    # Found in review: UnknownTool is a LookupError, outside the handled error types: 500.
    text = (EXAMPLES / "counter.yaml").read_text().replace("tool: add_one", "tool: nope")
    with httpx.Client(base_url=engine.url) as c:
        got = c.post("/workflows", json={"ir": ir_of(text)})
        assert got.status_code == 422 and "nope" in got.json()["error"]


def test_a_second_engine_on_a_held_journal_says_so_in_one_line_I6(
    engine: Engine, tmp_path: Path
) -> None:
    # Found in review: the lock error surfaced inside uvicorn's lifespan: a traceback, exit 3.
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev", "--port", str(free_port())],
        env={**engine.env}, cwd=EXAMPLES, capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "tether dev:" in done.stderr.splitlines()[-1]
