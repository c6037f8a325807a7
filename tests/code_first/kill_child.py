"""Child process for the code-first SIGKILL test: prints the execution id, runs until killed.

python kill_child.py DB LOG
"""

from __future__ import annotations

import sys

import anyio
from kill_flow import killed

from tether import Runtime


async def main(db: str, log: str) -> None:
    async with Runtime(f"sqlite:///{db}", workflows=[killed]) as rt:
        run = await rt.start(killed, {"log": log})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
