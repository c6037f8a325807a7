"""A cold ``tether dev`` opens its journal and worker port before it imports its HTTP layer
(issue 19: while a restarted engine loads, no step of any run moves). Its workers rejoin and
finish runs while Litestar is still loading; the REST API answers on the port bound first."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from test_dev_standby import eventually, healthy
from test_server_http import DEADLINE, HERE, ROOT, free_port, ir_of

from benchmarks.chaos_tools import CHAIN_YAML, LOG_ENV, WORKFLOW_ID, expected

READY = "Application startup complete"


class Engine:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port, self.worker_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "journal.db"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            LOG_ENV: str(tmp / "effects.log"),
            # Every step goes to the worker process; no cron writes into the journal.
            "TETHER_EMBED_WORKERS": "0",
            "TETHER_EMBED_CRON": "false",
        }
        self.lives = 0

    def spawn(self, *launcher: str) -> subprocess.Popen[bytes]:
        """``tether dev`` on the journal, through ``launcher`` (a module run with -m) if given."""
        self.lives += 1
        command = [sys.executable, "-m", *(launcher or ("tether.cli",)), "dev",
                   "--modules", "benchmarks.chaos_tools", "--db", str(self.db),
                   "--port", str(self.port), "--worker-port", str(self.worker_port)]  # fmt: skip
        return self._run(command, f"engine-{self.lives}")

    def worker(self) -> subprocess.Popen[bytes]:
        return self._run([sys.executable, "-m", "tether.cli", "worker", "--engine",
                          f"tcp://127.0.0.1:{self.worker_port}", "--modules",
                          "benchmarks.chaos_tools", "--worker-id", "w1"], "worker")  # fmt: skip

    def _run(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.err").open("wb") as err:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip

    def log(self, life: int) -> str:
        return (self.tmp / f"engine-{life}.err").read_text(errors="replace")

    def healthy(self) -> bool:
        return healthy(self.url)

    def worker_port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.worker_port), timeout=1):
                return True
        except OSError:
            return False

    def status(self, execution_id: str) -> str | None:
        """The run's status in the journal's index, read beside the engine (not through it)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT status FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        return None if row is None else str(row[0])


def reap(*procs: subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()


def test_workers_finish_runs_while_the_restarted_engines_http_layer_loads_I3(
    tmp_path: Path,
) -> None:
    engine = Engine(tmp_path)
    gate = tmp_path / "http-may-load"
    first = engine.spawn()
    second = worker = None
    try:
        eventually(engine.healthy, "the first engine to answer")
        with httpx.Client(base_url=engine.url, timeout=DEADLINE) as c:
            c.post("/workflows", json={"ir": ir_of(CHAIN_YAML)}).raise_for_status()
            body = {"workflow_id": WORKFLOW_ID, "input": {"run": "r1", "x": 1, "ms": 0}}
            eid = c.post("/executions", json=body).json()["execution_id"]
        first.send_signal(signal.SIGKILL)  # no worker ever came: the run waits in the journal
        first.wait()
        assert engine.status(eid) == "running"

        second = engine.spawn("held_http_engine", str(gate))
        worker = engine.worker()
        eventually(lambda: engine.status(eid) == "completed",
                   "the worker to finish the run on the restarted engine")  # fmt: skip
        # ...all of it while the engine's HTTP layer was still loading.
        assert not engine.healthy()
        assert READY not in engine.log(2)

        gate.touch()
        eventually(engine.healthy, "the API to answer once its layer loaded")
        with httpx.Client(base_url=engine.url, timeout=DEADLINE) as c:
            run = c.get(f"/executions/{eid}").json()
        assert run["status"] == "completed"
        assert run["current_state"]["x"] == expected(1)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=DEADLINE) == 0
    finally:
        reap(first, second, worker)


def test_a_sigterm_while_the_http_layer_loads_stops_the_engine_cleanly(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    gate = tmp_path / "http-may-load"
    proc = engine.spawn("held_http_engine", str(gate))
    try:
        eventually(engine.worker_port_open, "the journal and the worker port to open")
        proc.send_signal(signal.SIGTERM)
        gate.touch()  # the import it waited for ends; the engine does not serve after it
        assert proc.wait(timeout=DEADLINE) == 0
        assert READY not in engine.log(1)
        restarted = engine.spawn()  # the journal was closed and its lock let go
        try:
            eventually(engine.healthy, "an engine on the same journal to answer")
        finally:
            reap(restarted)
    finally:
        reap(proc)
