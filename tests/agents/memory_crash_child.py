"""Child process for the SIGKILL test of a memory write: the engine kills itself with SIGKILL
right before or right after the fact's row commits (so after it, the row is there and the
node's ``node_completed`` is not).

python memory_crash_child.py DB before|after EXECUTION_ID  -> dies
"""

from __future__ import annotations

import os
import signal
import sys

import anyio

from tether import Runtime
from tether.ir import compile_yaml_text
from tether.persistence import SqliteStore
from tether.persistence.facts import FactRow

FLOW = """
workflow: {id: remember, version: "1"}
nodes:
  remember: {type: memory_write, user: $user, subject: location, content: $city, next: recall}
  recall: {type: memory_retrieval, user: $user, topic: "where does she live", output_key: memory,
           next: end}
"""


class DyingStore(SqliteStore):
    """A SQLite store whose process is killed around its first fact write."""

    def __init__(self, path: str, when: str) -> None:
        super().__init__(path)
        self.when = when

    async def write_fact(self, row: FactRow) -> bool:
        if self.when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        written = await super().write_fact(row)
        os.kill(os.getpid(), signal.SIGKILL)
        return written


async def main(db: str, when: str, execution_id: str) -> None:
    async with DyingStore(db, when) as store, Runtime(store=store) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "remember.yaml"))
        run = await rt.start(wf, {"user": "ana", "city": "Amsterdam"}, execution_id=execution_id)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
