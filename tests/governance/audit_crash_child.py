"""Child process for the audit crash test: an engine signing its audit chain, running many
chains at once until it is killed.

python audit_crash_child.py DB KEYS LOG RUNS  -> prints each execution id, then ``started``
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from tether import Runtime, tool
from tether.governance import engine_signer
from tether.ir import compile_yaml_text
from tether.runtime.internals import runtime_internals

CHAIN = """
workflow:
  id: audited
  version: "1"
  state_schema: {log: {type: string, required: true}}
nodes:
  s1: {type: tool, tool: step, input: {k: 1, log: $log}, next: s2}
  s2: {type: tool, tool: step, input: {k: 2, log: $log}, next: s3}
  s3: {type: tool, tool: step, input: {k: 3, log: $log}, next: s4}
  s4: {type: tool, tool: step, input: {k: 4, log: $log}, next: s5}
  s5: {type: tool, tool: step, input: {k: 5, log: $log}, next: end}
"""


@tool(name="step")
async def step(k: int, log: str) -> int:
    await anyio.sleep(0.02)
    with open(log, "a") as f:
        f.write(f"{k}\n")
    return k


async def engine(db: str, keys: str, log: str, runs: int) -> None:
    async with Runtime(f"sqlite:///{db}", tools=[step]) as rt:
        services = runtime_internals(rt).services
        signer = engine_signer(services.store, services.clock, Path(keys), interval_s=0.02)
        assert signer is not None
        async with signer:
            wf = rt.register(compile_yaml_text(CHAIN))
            for _ in range(runs):
                run = await rt.start(wf, {"log": log})
                print(run.id, flush=True)
            print("started", flush=True)
            await anyio.sleep_forever()


if __name__ == "__main__":
    db, keys, log, runs = sys.argv[1:5]
    anyio.run(engine, db, keys, log, int(runs))
