"""Child process for the SIGKILL tests: runs a chain whose third step never returns here.

python crash_child.py DB LOG  -> prints the execution id, then runs until killed
(DB: a SQLite file, or any storage URL such as postgresql://...). When the third step has
started it prints ``blocked 3``: the parent can wait for that line instead of polling LOG.
"""

from __future__ import annotations

import asyncio
import os
import sys

import anyio

from tether import Runtime, tool
from tether.ir import compile_yaml_text

CHAIN = """
workflow:
  id: chain
  version: "1"
  state_schema: {log: {type: string, required: true}}
nodes:
  s1: {type: tool, tool: step, input: {k: 1, log: $log}, next: s2}
  s2: {type: tool, tool: step, input: {k: 2, log: $log}, next: s3}
  s3: {type: tool, tool: step, input: {k: 3, log: $log}, next: s4}
  s4: {type: tool, tool: step, input: {k: 4, log: $log}, next: end}
"""


def make_step(block_at: int | None):  # type: ignore[no-untyped-def]
    @tool(name="step")
    async def step(k: int, log: str) -> int:
        with open(log, "a") as f:
            f.write(f"start {k} {os.getpid()} {ran_in()}\n")
        if k == block_at:
            print(f"blocked {k}", flush=True)
            await anyio.sleep_forever()
        with open(log, "a") as f:
            f.write(f"done {k} {os.getpid()}\n")
        return k

    return step


def ran_in() -> str:
    """Which task runs the step: its execution actor's own (``inline``) or a pool worker's."""
    task = asyncio.current_task()
    assert task is not None
    return "inline" if task.get_name().startswith("tether actor ") else "pool"


async def main(db: str, log: str) -> None:
    url = db if "://" in db else f"sqlite:///{db}"
    async with Runtime(url, tools=[make_step(block_at=3)]) as rt:
        wf = rt.register(compile_yaml_text(CHAIN, "chain.yaml"))
        run = await rt.start(wf, {"log": log})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
