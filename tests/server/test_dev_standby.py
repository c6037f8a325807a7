"""``tether dev --standby``: a warm spare on the same SQLite journal that takes over when the
engine writing it stops, SIGKILL included (issue 19: a restarted engine's start, about a
second of imports and setup, lands in every run's latency while it is down).

Real processes: the engine, then the standby (which must not serve or write while the engine
lives), then a SIGKILL of the engine; the standby answers on the same port with the journal's
runs, and a run paused at an approval before the kill completes after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_server_http import APPROVAL, DEADLINE, EXAMPLES, HERE, ROOT, free_port, ir_of


def dev(tmp: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TETHER_DATABASE_URL": f"sqlite:///{tmp / 'engine.db'}",
        "TETHER_WORKER_PORT": "0",
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(HERE), str(ROOT)]),
    }
    log = tmp / f"dev-{len(list(tmp.glob('dev-*.log')))}.log"
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "dev", "--modules", "tools", "--port", str(port),
         *args],
        cwd=EXAMPLES, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip


def eventually(check: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def log_says(tmp: Path, text: str) -> bool:
    return any(text in p.read_text(errors="replace") for p in tmp.glob("dev-*.log"))


def test_a_standby_takes_over_the_journal_when_its_engine_is_killed_I6(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    engine = dev(tmp_path, port)
    standby = None
    try:
        eventually(lambda: healthy(url), "the engine to answer")
        with httpx.Client(base_url=url) as c:
            c.post("/workflows", json={"ir": ir_of(APPROVAL)}).raise_for_status()
            eid = c.post("/executions", json={"workflow_id": "pay", "input": {"n": 1}}).json()[
                "execution_id"
            ]
            eventually(lambda: c.get(f"/executions/{eid}").json()["status"] == "paused",
                       "the run to wait for its approval")  # fmt: skip
        standby = dev(tmp_path, port, "--standby")
        # It found the journal held by the engine and waits for it (it neither serves nor
        # writes meanwhile: the port and the journal's lock are the engine's).
        holder = f"its engine (pid {engine.pid}) writes it; waiting"
        eventually(lambda: log_says(tmp_path, holder), "the standby to wait for the engine")
        assert standby.poll() is None

        engine.send_signal(signal.SIGKILL)
        assert engine.wait(timeout=DEADLINE) == -signal.SIGKILL
        eventually(lambda: healthy(url), "the standby to answer on the engine's port")
        assert standby.poll() is None
        with httpx.Client(base_url=url) as c:
            assert c.get(f"/executions/{eid}").json()["status"] == "paused"
            ok = c.post(f"/executions/{eid}/approve", json={"decision": "approved"})
            assert ok.json()["accepted"] is True
            eventually(lambda: c.get(f"/executions/{eid}").json()["status"] == "completed",
                       "the run to complete on the standby")  # fmt: skip
            assert c.get(f"/executions/{eid}").json()["current_state"]["n"] == 2
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=DEADLINE) == 0
    finally:
        for proc in (engine, standby):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_standby_needs_a_sqlite_journal_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "dev", "--standby", "--port", str(free_port()),
         "--worker-port", "0", "--db", "postgresql://postgres@127.0.0.1:1/none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--standby needs a SQLite journal" in done.stderr
    assert "Traceback" not in done.stderr
