"""Real processes for the fleet's crash tests: ``tether worker`` children whose output goes to
files, an in-process engine that runs nothing itself, and polling with a deadline.

Example::

    async with fleet_engine(tmp_path) as (rt, endpoint):
        w = children.worker("wa", endpoint)
        await connected(w)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
from crash_tools import (
    LOG_ENV,
    WORKER_ENV,
    Effect,
    hold_first,
    hold_until,
    killer_tool,
    read_effects,
    step,
    throttled_twice,
)

from tether import JournalEntry, Runtime
from tether.clock import Clock
from tether.fleet.transport import ZmqFleet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOOLS = [hold_first, hold_until, throttled_twice, step, killer_tool]
#: Short liveness timings, so a lost worker is noticed in 1.5-2 s (six heartbeats per TTL).
TTL_MS = 1_500
HEARTBEAT_MS = 250
#: Bound on every wait; each is for an event, polled every POLL_SECS.
DEADLINE = 30.0
POLL_SECS = 0.01

T = TypeVar("T")


async def eventually(check: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout``."""
    with anyio.move_on_after(timeout):
        while not (found := check()):
            await anyio.sleep(POLL_SECS)
        return found
    raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")


@dataclass
class Child:
    """A child process whose stdout and stderr go to files (read while it runs)."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def lines(self) -> list[str]:
        """Complete stdout lines."""
        text = self.stdout()
        return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Children:
    """Starts the test's processes; kills whatever is left at the end (continuing stopped ones)."""

    dir: Path
    log: Path
    started: list[Child] = field(default_factory=list)

    def _start(self, name: str, argv: list[str]) -> Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        env[LOG_ENV] = str(self.log)
        env[WORKER_ENV] = name
        out, err = self.dir / f"{name}.out", self.dir / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(argv, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        child = Child(name, proc, out, err)
        self.started.append(child)
        return child

    def worker(
        self, name: str, endpoint: str, concurrency: int = 1, *, worker_id: str | None = None
    ) -> Child:
        """A ``tether worker`` process; ``worker_id`` (default ``name``) may repeat: a new
        process under an earlier one's id."""
        return self._start(
            name,
            [
                sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
                "--modules", "crash_tools", "--worker-id", worker_id or name,
                "--concurrency", str(concurrency), "--connect-timeout", str(DEADLINE),
            ],
        )  # fmt: skip

    def process(self, name: str, argv: Sequence[str]) -> Child:
        """Any child process (an engine), with the side-effect log in its environment."""
        return self._start(name, list(argv))

    def engine(self, name: str, db: Path, port: int, n: int) -> Child:
        child = HERE / "crash_engine_child.py"
        return self._start(name, [sys.executable, str(child), str(db), str(port), str(n)])

    def by_pid(self, pid: int) -> Child:
        for child in self.started:
            if child.pid == pid:
                return child
        raise AssertionError(f"pid {pid} is none of this test's processes")

    def cleanup(self) -> None:
        for child in self.started:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):  # it may exit meanwhile
                    os.kill(child.pid, signal.SIGCONT)  # never leave one stopped
                    child.proc.kill()
            child.proc.wait(timeout=DEADLINE)


@asynccontextmanager
async def fleet_engine(
    tmp_path: Path,
    clock: Clock | None = None,
    *,
    endpoint: str = "tcp://127.0.0.1:0",
    ttl_ms: int = TTL_MS,
    heartbeat_ms: int = HEARTBEAT_MS,
    silence_ms: int | None = None,
) -> AsyncIterator[tuple[Runtime, str]]:
    """An engine in this process that runs nothing itself: every node goes to the fleet;
    with the endpoint its broker bound. The same ``tmp_path`` is the same journal."""
    fleet = ZmqFleet(endpoint, heartbeat_interval_ms=heartbeat_ms, silence_ms=silence_ms)
    async with Runtime(
        f"sqlite:///{tmp_path / 'engine.db'}",
        tools=TOOLS,
        clock=clock,
        transports=[fleet],
        max_concurrency=0,
        lease_ttl_ms=ttl_ms,
    ) as rt:
        yield rt, fleet.endpoint


async def connected(*workers: Child) -> None:
    """Wait until each worker says it was welcomed by the engine."""
    for w in workers:

        def welcomed(w: Child = w) -> bool:
            return "worker_connected" in w.stderr() or not w.alive()

        await eventually(welcomed, f"worker {w.name} to connect")
        assert w.alive(), f"worker {w.name} exited {w.proc.returncode}: {w.stderr()}"


def effects_of(log: Path, event: str, key: str) -> list[Effect]:
    return [e for e in read_effects(log) if e.event == event and e.key == key]


def node_records(journal: list[JournalEntry], node_id: str) -> list[Any]:
    return [e.record for e in journal if getattr(e.record, "node_id", None) == node_id]


def shape(records: list[Any]) -> list[tuple[str, int, int]]:
    """(type, attempt, dispatch) of each record, the sequence a test pins."""
    return [(r.type, r.attempt, r.dispatch) for r in records]


async def exit_code(child: Child, timeout: float = DEADLINE) -> int:
    await eventually(lambda: child.proc.poll() is not None, f"{child.name} to exit", timeout)
    return child.proc.returncode
