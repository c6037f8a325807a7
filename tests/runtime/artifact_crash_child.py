"""Child process for the SIGKILL tests of artifacts: the engine kills itself right after the
first artifacts commit and before the turn that references them does (``between``), or right
after that turn commits (``after``).

python artifact_crash_child.py DB between|after EXECUTION_ID LOG  -> dies
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

import anyio

from tether import Runtime, tool
from tether.ir import compile_yaml_text
from tether.persistence import SqliteStore
from tether.persistence.artifacts.spill import REF_MARKER
from tether.persistence.contract import Turn

FLOW = """
workflow: {id: big, version: "1"}
nodes:
  fetch: {type: tool, tool: fetch, output_key: doc, next: measure}
  measure: {type: tool, tool: measure, output_key: size, next: end}
"""

#: The step's result: 64 KiB, past the default threshold (8 KiB).
DOC = "0123456789abcdef" * 4096


def make_tools(log: str) -> list[object]:
    @tool
    async def fetch() -> str:
        with open(log, "a") as f:
            f.write("fetch\n")
        return DOC

    @tool
    async def measure(doc: str) -> int:
        with open(log, "a") as f:
            f.write("measure\n")
        return len(doc)

    return [fetch, measure]


class DyingStore(SqliteStore):
    """A SQLite store whose process is killed around its first artifacts."""

    def __init__(self, path: str, when: str) -> None:
        super().__init__(path)
        self.when = when

    async def put_artifacts(self, blobs: Sequence[bytes], at_ms: int) -> list[str]:
        digests = await super().put_artifacts(blobs, at_ms)
        if self.when == "between":  # committed; the turn referencing them is not
            os.kill(os.getpid(), signal.SIGKILL)
        return digests

    async def append(self, turn: Turn) -> int:
        last = await super().append(turn)
        if self.when == "after" and any(REF_MARKER in r.payload for r in turn.records):
            os.kill(os.getpid(), signal.SIGKILL)
        return last


async def main(db: str, when: str, execution_id: str, log: str) -> None:
    async with DyingStore(db, when) as store, Runtime(store=store, tools=make_tools(log)) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "big.yaml"))
        run = await rt.start(wf, {}, execution_id=execution_id)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:5])
