"""The chaos scenario's tool and workflow (``--modules benchmarks.chaos_tools`` on the engine and
every worker).

Each call of ``chaos_step`` appends one line ``RUN NODE ATTEMPT DISPATCH PID`` to the
side-effect log named by ``$TETHER_CHAOS_LOG``: one ``O_APPEND`` write, whole even with many
writers. No fsync: the faults kill processes, not the kernel, whose page cache keeps every
write that returned.
"""

from __future__ import annotations

import os
import sys
from typing import Final

import anyio

from tether.runtime.tools import tool

LOG_ENV: Final = "TETHER_CHAOS_LOG"
#: The chain's nodes, in order; each folds its index into ``x`` (see ``expected``).
NODES: Final = ("s1", "s2", "s3", "s4")
#: Enough attempts that lease expiries from many faults never dead-letter a node; a run that
#: does fail shows as ``wrong`` in the report, with its error.
MAX_ATTEMPTS: Final = 25

WORKFLOW_ID: Final = "chaos-chain"
CHAIN_YAML: Final = f"""
workflow:
  id: {WORKFLOW_ID}
  version: "1"
  state_schema:
    run: {{type: string, required: true}}
    ms: {{type: integer, default: 50}}
    x: {{type: integer, default: 0}}
nodes:
""" + "".join(
    f"  {node}: {{type: tool, tool: chaos_step,"
    f" input: {{run: $run, node: {node}, x: $x, ms: $ms}}, output_key: x,"
    f" retry: {{max_attempts: {MAX_ATTEMPTS}, backoff_initial_secs: 0.05}},"
    f" next: {NODES[i + 1] if i + 1 < len(NODES) else 'end'}}}\n"
    for i, node in enumerate(NODES)
)


def fold(x: int, node: str) -> int:
    """One step's result: order-sensitive, so a node run on a stale ``x`` shows in the end."""
    return x * 3 + NODES.index(node) + 1


def expected(x0: int) -> int:
    """The final ``x`` of a run that started with ``x0``."""
    for node in NODES:
        x0 = fold(x0, node)
    return x0


def grant_attempt() -> str:
    """``ATTEMPT DISPATCH`` of the worker's Grant this call runs for, or ``- -``.

    The tool API does not pass them, so they are read from the worker's ``run_grant`` frame,
    which awaits this call: the log then says which journaled hand-out each execution was."""
    frame = sys._getframe(1)
    while frame is not None:
        grant = frame.f_locals.get("grant")
        if grant is not None and hasattr(grant, "attempt") and hasattr(grant, "dispatch"):
            return f"{grant.attempt} {grant.dispatch}"
        frame = frame.f_back
    return "- -"


@tool
async def chaos_step(run: str, node: str, x: int, ms: int) -> int:
    """Sleeps ``ms`` (a window for the faults to land in), logs the call, returns ``fold``."""
    await anyio.sleep(ms / 1000)
    line = f"{run} {node} {grant_attempt()} {os.getpid()}\n".encode()
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return fold(x, node)
