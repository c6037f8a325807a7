"""The ``tether_dev`` fixture: a real ``tether dev`` engine in a subprocess on loopback, for
tests that go through the HTTP API (or a ``JamjetClient``) as a deployment would.

Readiness is the engine saying so on its log (uvicorn's "Application startup complete"), read
as it is written: no polling, no sleeps.

Example::

    with start_dev_engine(tmp_path, modules="my_tools") as engine:
        httpx.post(f"{engine.url}/executions", json={"workflow_id": "w", "input": {}})
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tether.testing.loopback import free_loopback_port as _free_port

READY_LINE = "Application startup complete"
_TETHER_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class DevEngine:
    """A running engine: its ``url``, its journal's ``database``, the log lines so far."""

    url: str
    port: int
    database: Path
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)


@contextmanager
def start_dev_engine(
    directory: Path,
    *,
    modules: str | None = None,
    timeout: float = 30.0,
    port: int | None = None,
    worker_port: int = 0,
) -> Iterator[DevEngine]:
    """Start ``tether dev`` with its journal in ``directory`` (``--modules`` if given), wait
    until it serves, and kill it on the way out. ``port``: the port to serve on (default a
    free one), so that a test can restart an engine where its clients find it;
    ``worker_port``: its fleet port for ``tether worker`` processes (default 0: none)."""
    port = port or _free_port()
    database = directory / "engine.db"
    args = [sys.executable, "-m", "tether.cli", "dev", "--port", str(port)]
    args += ["--db", str(database), "--worker-port", str(worker_port)]
    if modules:
        args += ["--modules", modules]
    # The engine imports this Tether (not another installed one) and the test's own modules.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_TETHER_ROOT, os.getcwd(), *_path()])}
    proc = subprocess.Popen(
        args, cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    engine = DevEngine(f"http://127.0.0.1:{port}", port, database, proc)
    ready = threading.Event()
    threading.Thread(target=_read_log, args=(engine, ready), daemon=True).start()
    try:
        if not ready.wait(timeout) or proc.poll() is not None:
            raise RuntimeError("tether dev did not start:\n" + "\n".join(engine.log[-20:]))
        yield engine
    finally:
        proc.kill()
        proc.wait()


def _read_log(engine: DevEngine, ready: threading.Event) -> None:
    assert engine.process.stderr is not None
    for line in engine.process.stderr:  # until the process ends; keeps the pipe drained
        engine.log.append(line.rstrip())
        if READY_LINE in line:
            ready.set()
    ready.set()  # it ended before it was ready: the caller finds the process gone


def _path() -> list[str]:
    current = os.environ.get("PYTHONPATH")
    return current.split(os.pathsep) if current else []
