"""Run examples/counter.yaml durably in a SQLite journal, print the result and the records,
and check that replaying the journal rebuilds the live state.

    python examples/counter.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import add_one

from tether import Runtime
from tether.testing import check_replay

HERE = Path(__file__).resolve().parent


async def main() -> None:
    async with Runtime("sqlite:///.tether/examples.db", tools=[add_one]) as rt:
        wf = rt.register_yaml(HERE / "counter.yaml")
        run = await rt.start(wf, input={"n": 0})
        print("result: ", await run.result())
        print("records:", [entry.type for entry in await rt.journal(run.id)])
        await check_replay(rt, run.id)
        print("replay of", run.id, "equals its live state")


if __name__ == "__main__":
    anyio.run(main)
