"""Connections to a real ``tether dev`` that never finish a request: a flood of idle ones
and a slowloris are closed, /health answers through them, the log stays short, and the
engine lifts its open-file limit at start."""

from __future__ import annotations

import json
import resource
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from test_server_http import DEADLINE, Engine, running_engine

LIMITS = {"TETHER_MAX_CONNECTIONS": "100", "TETHER_HEADER_TIMEOUT_SECS": "2"}
FLOOD = 300


def closed_by_server(sock: socket.socket, drip: bytes = b"") -> bool:
    """Wait (up to DEADLINE) for the engine to close ``sock``, sending one byte of ``drip``
    whenever it has been quiet for a moment, as a slowloris does."""
    deadline = time.monotonic() + DEADLINE
    sock.settimeout(0.25 if drip else DEADLINE)
    while time.monotonic() < deadline:
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            pass  # quiet for a moment: drip
        except ConnectionResetError:
            return True
        try:
            sock.sendall(drip[:1])
        except (ConnectionResetError, BrokenPipeError):
            return True
        drip = drip[1:] or b"X"
    return False


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path, LIMITS) as e:
        yield e


def test_a_flood_of_idle_connections_is_shed_and_health_answers(engine: Engine) -> None:
    before = len(engine.log.read_text().splitlines())
    flood = [socket.create_connection(("127.0.0.1", engine.port)) for _ in range(FLOOD)]
    try:
        with httpx.Client(base_url=engine.url) as c:  # after the flood: it is the newest
            assert c.get("/health").status_code == 200
            assert c.get("/executions").status_code == 200
        assert all(closed_by_server(s) for s in flood)  # shed at the bound, or timed out
        with httpx.Client(base_url=engine.url) as c:
            assert c.get("/health").status_code == 200
    finally:
        for s in flood:
            s.close()
    lines = [json.loads(x) for x in engine.log.read_text().splitlines()[before:]]
    shed = [x for x in lines if "connection limit" in x["event"]]
    assert 1 <= len(shed) <= 30, len(shed)  # ~200 sheddings: a few lines, then a count


def test_a_slowloris_is_closed_while_it_drips_a_header(engine: Engine) -> None:
    with socket.create_connection(("127.0.0.1", engine.port)) as s:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\n".encode())
        assert closed_by_server(s, drip=b"X-Slow: " + b"a" * 10_000)
    with socket.create_connection(("127.0.0.1", engine.port)) as s:  # after a response too
        s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{engine.port}\r\n\r\n".encode())
        assert b"200" in s.recv(4096)
        assert closed_by_server(s, drip=b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 10_000)


@contextmanager
def open_file_soft_limit(soft: int) -> Iterator[None]:
    """This process's soft limit lowered (a child started inside inherits it)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/limits")
def test_the_engine_lifts_its_soft_open_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to lift")
    engine = Engine(tmp_path)
    with open_file_soft_limit(512):
        engine.start()
    try:
        assert engine.proc is not None
        limits = Path(f"/proc/{engine.proc.pid}/limits").read_text()
        [row] = [x for x in limits.splitlines() if x.startswith("Max open files")]
        lifted = "65536" if hard == resource.RLIM_INFINITY else str(hard)
        assert row.split()[3] == lifted, row  # Max open files <soft> <hard> files
    finally:
        engine.kill()
