"""A code-first workflow for the SIGKILL tests, run by kill_child.py and by the tests.

Its step logs each start and finish to the file the input names; with TETHER_TEST_BLOCK_AT
set, the call with that ``k`` never returns (the process is killed there).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import anyio

from tether import WorkflowContext, step, workflow


@step
async def logged(k: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"start {k} {os.getpid()}\n")
    if str(k) == os.environ.get("TETHER_TEST_BLOCK_AT"):
        await anyio.sleep_forever()
    with open(log, "a") as f:
        f.write(f"done {k} {os.getpid()}\n")
    return k


@workflow(id="killed", version="1")
async def killed(ctx: WorkflowContext, data: dict[str, Any]) -> int:
    log = data["log"]
    first = await logged(1, log)
    second, third = await asyncio.gather(logged(2, log), logged(3, log))
    fourth = await logged(4, log)
    return first + second + third + fourth
