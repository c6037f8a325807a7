"""The chaos scenario's processes: one ``tether dev`` engine and N ``tether worker`` processes on
127.0.0.1, each restartable after a SIGKILL, each incarnation's stderr in its own file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import anyio
import httpx

from benchmarks.chaos_tools import LOG_ENV
from tether.testing.loopback import free_loopback_port as free_port

ROOT: Final = Path(__file__).resolve().parents[1]
TOOLS_MODULE: Final = "benchmarks.chaos_tools"
#: Every wait for a process (healthy, connected, exited) gives up after this.
START_DEADLINE_SECS: Final = 60.0
POLL_SECS: Final = 0.02
#: The engine's lease TTL (``Runtime``'s default; ``tether dev`` has no setting for it).
LEASE_TTL_SECS: Final = 5.0
#: A restarted worker may find the engine down too: it waits this long for a Welcome.
WORKER_CONNECT_SECS: Final = 120.0


@dataclass
class Proc:
    """One incarnation of a child process; stderr goes to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
            os.kill(self.pid, signum)

    async def killed(self) -> None:
        """SIGKILL, then wait for the exit (a stopped process dies of SIGKILL too)."""
        self.signal(signal.SIGKILL)
        await wait_for(lambda: not self.alive(), f"pid {self.pid} to die")


async def wait_for(check: Callable[[], bool], what: str, proc: Proc | None = None) -> None:
    """Poll ``check()`` until true; raise after START_DEADLINE_SECS or if ``proc`` exits."""
    with anyio.move_on_after(START_DEADLINE_SECS):
        while not check():
            if proc is not None and not proc.alive():
                raise RuntimeError(f"exited ({proc.proc.returncode}) waiting for {what}:\n"
                                   f"{proc.output()[-3000:]}")  # fmt: skip
            await anyio.sleep(POLL_SECS)
        return
    raise RuntimeError(f"gave up after {START_DEADLINE_SECS:g}s waiting for {what}")


@dataclass
class Cluster:
    """The engine and the workers, their journal and side-effect log in ``dir``."""

    dir: Path
    workers: int
    concurrency: int
    port: int = field(default_factory=free_port)
    worker_port: int = field(default_factory=free_port)
    engine: Proc | None = None
    worker_procs: list[Proc | None] = field(default_factory=list)
    incarnations: int = 0
    #: Wall times each engine life was spawned and answered /health (its worker port listens
    #: before that: the runtime opens before the HTTP server serves).
    engine_starts: list[tuple[float, float]] = field(default_factory=list)
    #: With a file here, the engine runs under ``benchmarks.chaos_clock``: its wall clock is
    #: the real one plus the seconds the file says (the clock-jump fault writes it).
    clock_offset: Path | None = None
    #: The port workers connect to (a ``ReplyDropper`` in front of the engine's), if not its.
    worker_connect_port: int | None = None
    #: With ``standby``, a ``tether dev --standby`` waits beside the engine (``spare``) and
    #: is the restart when the engine is killed; a new one is spawned after each takeover.
    standby: bool = False
    spare: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def effects(self) -> Path:
        return self.dir / "effects.log"

    def _spawn(self, name: str, args: list[str], launcher: list[str] | None = None) -> Proc:
        self.incarnations += 1
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env[LOG_ENV] = str(self.effects)
        # All work goes to the worker processes; no cron fires into the journal.
        env.update(TETHER_EMBED_WORKERS="0", TETHER_EMBED_CRON="false", TETHER_LOG_LEVEL="info")
        log = self.dir / f"{name}-{self.incarnations}.err"
        with log.open("wb") as err:
            command = [sys.executable, "-m", *(launcher or ["tether.cli"]), *args]
            proc = subprocess.Popen(
                command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        return Proc(proc, log)

    async def start_engine(self) -> None:
        """Start ``tether dev`` on the journal (a restart resumes it); return once healthy.
        With ``standby``, the spare waiting beside the killed engine takes over instead (its
        start is timed from the takeover's beginning), and a new spare is spawned.

        Right after a SIGKILL the ports may still be held for a moment: a start that exits
        saying so is tried again until the deadline."""
        with anyio.move_on_after(START_DEADLINE_SECS):
            while True:
                spawned = time.time()
                spare, self.spare = self.spare, None
                self.engine = spare if spare is not None and spare.alive() else self._engine()
                if await self._healthy(self.engine):
                    self.engine_starts.append((spawned, time.time()))
                    if self.standby:
                        self.spare = self._engine("--standby")
                    return
                await anyio.sleep(0.2)
        # What the engine printed is the only account of why it never answered.
        engine = self.engine
        state = "alive" if engine is not None and engine.alive() else "exited"
        said = engine.output()[-3000:] if engine is not None else ""
        raise RuntimeError(f"tether dev on port {self.port} gave no /health in "
                           f"{START_DEADLINE_SECS:g}s ({state}); its log:\n{said}")  # fmt: skip

    def _engine(self, *more: str) -> Proc:
        clock = self.clock_offset
        return self._spawn("engine", [
            "dev", "--modules", TOOLS_MODULE, "--db", str(self.dir / "journal.db"),
            "--port", str(self.port), "--worker-port", str(self.worker_port), *more,
        ], None if clock is None else ["benchmarks.chaos_clock", str(clock)])  # fmt: skip

    async def _healthy(self, engine: Proc) -> bool:
        """True once /health answers; False if the engine exited (its log says why)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while engine.alive():
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        return True
                await anyio.sleep(POLL_SECS)
        if "in use" not in engine.output() and "Address already" not in engine.output():
            raise RuntimeError(f"tether dev exited ({engine.proc.returncode}):\n"
                               f"{engine.output()[-3000:]}")  # fmt: skip
        return False

    async def start_worker(self, i: int, wait: bool = True) -> None:
        """Start worker ``w<i>`` under the same worker id, as a supervisor would restart it."""
        endpoint = f"tcp://127.0.0.1:{self.worker_connect_port or self.worker_port}"
        proc = self._spawn(f"w{i}", [
            "worker", "--engine", endpoint, "--modules", TOOLS_MODULE, "--worker-id", f"w{i}",
            "--concurrency", str(self.concurrency), "--connect-timeout", str(WORKER_CONNECT_SECS),
        ])  # fmt: skip
        while len(self.worker_procs) <= i:
            self.worker_procs.append(None)
        self.worker_procs[i] = proc
        if wait:
            await wait_for(lambda: "worker_connected" in proc.output(), f"w{i} to connect", proc)

    def rejoins(self, stopped: Callable[[int, float], bool]) -> list[tuple[float, float]]:
        """Seconds from each engine restart's spawn, and from its /health answering, to each
        worker's re-registration with that life (the workers' ``re-registered with engine``
        log lines), one per worker process that was up across the restart and not stopped
        (``stopped(i, t)``: worker ``i`` was SIGSTOPped at wall time ``t``) when it began."""
        times: list[tuple[float, float]] = []
        for path in sorted(self.dir.glob("w*.err")):
            worker = int(path.name[1:].split("-")[0])
            stamps = [_stamp(line) for line in path.read_text(errors="replace").splitlines()
                      if "re-registered with engine" in line]  # fmt: skip
            for k, (start, healthy) in enumerate(self.engine_starts[1:], start=1):
                end = self.engine_starts[k + 1][0] if k + 1 < len(self.engine_starts) else 1e18
                after = [t for t in stamps if start <= t < end]
                if after and not stopped(worker, start):
                    times.append((min(after) - start, min(after) - healthy))
        return times

    def results_unacked_at_rejoin(self) -> int:
        """Results the workers held unacknowledged when they rejoined, and so re-sent (the
        count in their ``re-registered with engine`` log lines)."""
        total = 0
        for path in self.dir.glob("w*.err"):
            for line in path.read_text(errors="replace").splitlines():
                if "re-registered with engine" in line:
                    event = json.loads(line)["event"]
                    total += int(event.split(" lease(s) held, ")[1].split(" ")[0])
        return total

    def stop_all(self) -> None:
        """Kill whatever is left (continuing stopped ones first) and reap it."""
        for proc in [self.spare, self.engine, *self.worker_procs]:
            if proc is not None and proc.alive():
                proc.signal(signal.SIGCONT)
                proc.signal(signal.SIGKILL)
            if proc is not None:
                proc.proc.wait(timeout=START_DEADLINE_SECS)


def _stamp(line: str) -> float:
    """The wall time of a JSON log line (its ``timestamp``, ISO 8601 in UTC)."""
    raw = json.loads(line)["timestamp"]
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
