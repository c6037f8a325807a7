"""Child process for the SIGKILL test of a strategy agent: runs the reflection strategy of
``strategy_flows`` against the fake model server whose URL the parent passes in.

python strategy_crash_child.py DB LOG OPENAI_BASE_URL  -> prints the execution id, runs until killed
"""

from __future__ import annotations

import sys

import anyio
from agent_crash_child import make_runtime
from strategy_flows import strategy_flow


async def main(db: str, log: str, base_url: str) -> None:
    async with make_runtime(db, log, base_url) as rt:
        wf = rt.register(strategy_flow("reflection", max_iterations=3))
        run = await rt.start(wf, {"topic": "tea"})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
