"""Tools and workflows for the real-process crash tests (``--modules crash_tools``).

Every tool call appends one line ``EVENT KEY WORKER PID`` to the side-effect log named by
``$TETHER_CRASH_LOG`` (one ``O_APPEND`` write, then fsync), so the test counts what really ran,
where, even in a worker it SIGKILLed right after. ``$TETHER_CRASH_WORKER`` names the worker
process (default ``pid<PID>``). The engine registers the same tools to bind their arguments,
but with ``max_concurrency=0`` it never runs them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio

from tether import RateLimited
from tether.runtime.tools import tool

LOG_ENV: Final = "TETHER_CRASH_LOG"
WORKER_ENV: Final = "TETHER_CRASH_WORKER"
#: How long the first call of ``hold_first`` waits for another worker (the test ends it sooner).
HOLD_SECS: Final = 60.0
_POLL_SECS: Final = 0.01

# One tool node, held on its first run: the victim of the SIGKILL and SIGSTOP tests. Its retry
# is due at once, so it also runs on an engine whose clock stands still.
HOLD_YAML: Final = """
workflow:
  id: crash-hold
  version: "1"
  state_schema:
    key: {type: string, required: true}
    held: object
nodes:
  hold:
    type: tool
    tool: hold_first
    input: {key: $key}
    output_key: held
    retry: {max_attempts: 3, backoff_initial_secs: 0, jitter: 0}
    next: end
"""

# Rate-limited twice, then done: parks twice, never spends an attempt.
THROTTLED_YAML: Final = """
workflow:
  id: crash-throttled
  version: "1"
  state_schema:
    key: {type: string, required: true}
    retry_after: {type: number, default: 0.1}
    answer: object
nodes:
  call:
    type: tool
    tool: throttled_twice
    input: {key: $key, retry_after: $retry_after}
    output_key: answer
    retry: {max_attempts: 3, backoff_initial_secs: 0.05, jitter: 0}
    next: end
"""

# One tool node held until the test releases it (see hold_until): a lease that outlives an
# engine restart.
HOLD_UNTIL_YAML: Final = """
workflow:
  id: crash-hold-until
  version: "1"
  state_schema:
    key: {type: string, required: true}
    held: object
nodes:
  hold:
    type: tool
    tool: hold_until
    input: {key: $key}
    output_key: held
    retry: {max_attempts: 1, backoff_initial_secs: 0, jitter: 0}
    next: end
"""


def killer_yaml(kills: int, max_attempts: int, max_lease_losses: int) -> str:
    """One node whose tool SIGKILLs its own worker on its first ``kills`` calls."""
    return f"""
workflow:
  id: crash-killer-{kills}-{max_attempts}-{max_lease_losses}
  version: "1"
  state_schema:
    key: {{type: string, required: true}}
    out: object
nodes:
  kill:
    type: tool
    tool: killer_tool
    input: {{key: $key, kills: {kills}}}
    output_key: out
    retry: {{max_attempts: {max_attempts}, max_lease_losses: {max_lease_losses},
             backoff_initial_secs: 0, jitter: 0}}
    next: end
"""


# Four short steps that thread a counter through state: the engine-crash workload.
STEPS: Final = ("s1", "s2", "s3", "s4")
CHAIN_YAML: Final = """
workflow:
  id: crash-chain
  version: "1"
  state_schema:
    eid: {type: string, required: true}
    ms: {type: integer, default: 20}
    x: {type: integer, default: 0}
nodes:
""" + "".join(
    f"  {node}: {{type: tool, tool: step, input: {{eid: $eid, node: {node}, x: $x, ms: $ms}},"
    f" output_key: x, retry: {{max_attempts: 5, backoff_initial_secs: 0.05}},"
    f" next: {STEPS[i + 1] if i + 1 < len(STEPS) else 'end'}}}\n"
    for i, node in enumerate(STEPS)
)


@dataclass(frozen=True)
class Effect:
    """One line of the side-effect log."""

    event: str
    key: str
    worker: str
    pid: int


def worker_name() -> str:
    return os.environ.get(WORKER_ENV) or f"pid{os.getpid()}"


def log_path() -> Path:
    path = os.environ.get(LOG_ENV)
    if not path:
        raise RuntimeError(f"${LOG_ENV} is not set: the crash tools need a side-effect log")
    return Path(path)


def read_effects(path: Path) -> list[Effect]:
    """Every complete line of the log (a line still being written is skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        event, key, worker, pid = line.split()
        out.append(Effect(event, key, worker, int(pid)))
    return out


def note(event: str, key: str) -> None:
    """Append one line, durably, in one write (O_APPEND keeps concurrent writers whole)."""
    line = f"{event} {key} {worker_name()} {os.getpid()}\n".encode()
    fd = os.open(log_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _seen(predicate: Callable[[Effect], bool]) -> bool:
    return any(predicate(e) for e in read_effects(log_path()))


@tool
async def hold_first(key: str) -> dict[str, Any]:
    """The first call for ``key`` logs ``start`` and waits until another process has logged
    ``done`` for it (the test kills or stops this worker meanwhile); later calls run at once.
    Returns which worker ran it.

    The wait polls on the event loop: a worker SIGCONTed after its survivor finished returns
    from here in its first loop turn, so its late Result goes out before it can read any
    answer from the engine to the heartbeat it sends at the same moment."""
    first = not _seen(lambda e: e.event == "start" and e.key == key)
    note("start", key)
    if first:
        me = os.getpid()
        with anyio.fail_after(HOLD_SECS):
            while not _seen(lambda e: e.event == "done" and e.key == key and e.pid != me):
                await anyio.sleep(_POLL_SECS)
    note("done", key)
    return {"by": worker_name(), "pid": os.getpid()}


@tool
async def throttled_twice(key: str, retry_after: float) -> dict[str, Any]:
    """Says 429 on its first two calls for ``key``, answers on the third."""
    calls = sum(1 for e in read_effects(log_path()) if e.event == "call" and e.key == key)
    note("call", key)
    if calls < 2:
        raise RateLimited(retry_after, f"provider said 429 (call {calls + 1})")
    return {"calls": calls + 1, "by": worker_name()}


@tool
async def step(eid: str, node: str, x: int, ms: int) -> int:
    """Sleeps ``ms``, logs ``run EID/NODE``, returns ``x + 1``."""
    await anyio.sleep(ms / 1000)
    note("run", f"{eid}/{node}")
    return x + 1


def release_path(key: str) -> Path:
    """The file whose existence ends ``hold_until(key)``."""
    return log_path().with_name(f"release-{key}")


@tool
async def hold_until(key: str) -> dict[str, Any]:
    """Logs ``start``, waits until the test creates ``release_path(key)``, logs ``done``;
    returns which worker ran it."""
    note("start", key)
    with anyio.fail_after(HOLD_SECS):
        while not release_path(key).exists():
            await anyio.sleep(_POLL_SECS)
    note("done", key)
    return {"by": worker_name(), "pid": os.getpid()}


@tool
async def killer_tool(key: str, kills: int) -> dict[str, Any]:
    """Logs ``call``; on the first ``kills`` calls for ``key`` SIGKILLs its own process (the
    worker dies holding the lease), afterwards returns which worker ran it."""
    calls = sum(1 for e in read_effects(log_path()) if e.event == "call" and e.key == key)
    note("call", key)
    if calls < kills:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"by": worker_name(), "calls": calls + 1}
