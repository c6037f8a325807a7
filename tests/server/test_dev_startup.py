"""``tether dev`` as a newcomer starts it: a plain journal path, a worker port already taken
(one line and an exit code, never a traceback), one configuration the server and the client
commands both read, ``tether --version``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_server_http import DEADLINE, ROOT, free_port, running_engine


def _dev(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "dev", *args],
        cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def _healthy(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("tether dev did not answer /health")


def test_db_takes_a_plain_path_as_jamjet_dev_does(tmp_path: Path) -> None:
    port = free_port()
    proc = _dev(tmp_path, "--db", "data/runtime.db", "--port", str(port), "--worker-port", "0")
    try:
        _healthy(f"http://127.0.0.1:{port}", proc)
        assert (tmp_path / "data" / "runtime.db").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    taken, port = free_port(), free_port()
    first = _dev(tmp_path, "--db", "a.db", "--port", str(port), "--worker-port", str(taken))
    second = None
    try:
        _healthy(f"http://127.0.0.1:{port}", first)  # it holds the worker port now
        other = str(free_port())
        second = _dev(tmp_path, "--db", "b.db", "--port", other, "--worker-port", str(taken))
        out = second.communicate(timeout=DEADLINE)[1]
        assert second.returncode == 1, out
        lines = [ln for ln in out.splitlines() if "cannot listen" in ln]
        assert len(lines) == 1 and f":{taken}" in lines[0] and "--worker-port" in lines[0]
        assert "Traceback" not in out
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_the_client_commands_read_the_port_the_server_reads(tmp_path: Path) -> None:
    with running_engine(tmp_path) as engine:
        env = {k: v for k, v in os.environ.items() if k != "TETHER_ENGINE_URL"}
        env["TETHER_PORT"] = str(engine.port)
        listed = subprocess.run(
            [sys.executable, "-m", "tether.cli", "workflows"],
            env=env, capture_output=True, text=True, timeout=DEADLINE,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tether.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("tether ")


def test_an_api_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Found re-walking the first hour: uvicorn logged the bind error among JSON lines after
    `tether dev` had said it listened there, and the process exited 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _dev(tmp_path, "--db", "a.db", "--port", str(port), "--worker-port", "0")
        out = proc.communicate(timeout=DEADLINE)[1]
    assert proc.returncode == 1, out
    assert out.splitlines() == [
        f"tether dev: cannot listen on http://127.0.0.1:{port}: Address already in use "
        "(choose another --port)"
    ]
