"""Child process for the repeated-SIGKILL test: starts N executions and runs them to the end.

python kill_loop_child.py DB EFFECTS N INCARNATION

Starts ``exec_000`` .. ``exec_{N-1}`` (deterministic ids, so a restarted child re-issues the
same starts and each is a no-op), waits for all of them and prints ``done N``. The Runtime
resumes whatever an earlier, killed incarnation left unfinished when it is entered. Every tool
call appends one line ``<execution_id> <node_id> <incarnation>`` to EFFECTS before it returns:
the side effect the parent counts.

Journal before act (I1): as it starts, every tool call looks, through a SQLite connection of
its own, for its step's ``node_scheduled`` in DB (what is durable, not what the engine
believes), and appends ``<execution_id> <node_id> <incarnation> <1 if found, else 0>`` to
``EFFECTS.handouts``, so the parent can check that no step ran before its turn committed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from typing import Any

import anyio

from tether import Runtime, Tool, tool
from tether.ir import compile_yaml_text
from tether.runtime.records import NodeScheduled, decode_record

MAX_CONCURRENCY = 8

CHAIN6 = """
workflow:
  id: chain6
  version: "1"
  state_schema:
    eid: {type: string, required: true}
    x: {type: integer, default: 0}
nodes:
  s1: {type: tool, tool: mix, input: {eid: $eid, node: s1, x: $x, k: 1}, output_key: x, next: s2}
  s2: {type: tool, tool: mix, input: {eid: $eid, node: s2, x: $x, k: 2}, output_key: x, next: s3}
  s3: {type: tool, tool: mix, input: {eid: $eid, node: s3, x: $x, k: 3}, output_key: x, next: s4}
  s4: {type: tool, tool: mix, input: {eid: $eid, node: s4, x: $x, k: 4}, output_key: x, next: s5}
  s5: {type: tool, tool: mix, input: {eid: $eid, node: s5, x: $x, k: 5}, output_key: x, next: s6}
  s6: {type: tool, tool: mix, input: {eid: $eid, node: s6, x: $x, k: 6}, output_key: x}
"""

FORK = """
workflow:
  id: fork
  version: "1"
  start: pick
  state_schema:
    eid: {type: string, required: true}
    n: {type: integer, default: 0}
    doubled: integer
    incremented: integer
    tag: string
nodes:
  pick:
    type: branch
    cases:
      - {when: "n > 3", to: big}
    default: small
  big: {type: tool, tool: double, input: {eid: $eid, node: big, n: $n}, output_key: doubled,
        next: fan}
  small: {type: tool, tool: add_one, input: {eid: $eid, node: small, n: $n}, output_key: n,
          next: fan}
  fan: {type: parallel, branches: [inc, tag]}
  inc: {type: tool, tool: add_one, input: {eid: $eid, node: inc, n: $n},
        output_key: incremented, next: merge}
  tag: {type: tool, tool: label, input: {eid: $eid, node: tag, n: $n}, output_key: tag,
        next: merge}
  merge: {type: join, wait_for: [inc, tag], next: done}
  done: {type: end}
"""


def plan(n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The executions to start: (execution id, workflow id, input), the same every time."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(n):
        eid = f"exec_{i:03d}"
        if i % 2 == 0:
            out.append((eid, "chain6", {"eid": eid, "x": i}))
        else:
            out.append((eid, "fork", {"eid": eid, "n": i % 7}))
    return out


def _duration(eid: str, node: str) -> float:
    """A few ms, varied per step but deterministic (no randomness in the child)."""
    return 0.005 + (sum(map(ord, eid + node)) % 16) / 1000


def journaled(db: str, eid: str, node: str) -> bool:
    """Is a ``node_scheduled`` of ``node`` committed in the journal of ``eid``?"""
    # Synchronous on purpose: nothing else of this process runs before the answer.
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT payload FROM journal WHERE execution_id = ? AND type = 'node_scheduled'",
            (eid,),
        ).fetchall()
    for (payload,) in rows:
        record = decode_record("node_scheduled", payload)
        if isinstance(record, NodeScheduled) and record.node_id == node:
            return True
    return False


def make_tools(effects: str, incarnation: str, db: str) -> list[Tool]:
    async def effect(eid: str, node: str) -> None:
        seen = journaled(db, eid, node)
        with open(effects + ".handouts", "a") as f:
            f.write(f"{eid} {node} {incarnation} {int(seen)}\n")
        await anyio.sleep(_duration(eid, node))
        with open(effects, "a") as f:
            f.write(f"{eid} {node} {incarnation}\n")
            f.flush()

    @tool(name="mix")
    async def mix(eid: str, node: str, x: int, k: int) -> int:
        await effect(eid, node)
        return x * 10 + k

    @tool(name="add_one")
    async def add_one(eid: str, node: str, n: int) -> int:
        await effect(eid, node)
        return n + 1

    @tool(name="double")
    async def double(eid: str, node: str, n: int) -> int:
        await effect(eid, node)
        return n * 2

    @tool(name="label")
    async def label(eid: str, node: str, n: int) -> str:
        await effect(eid, node)
        return f"n={n}"

    return [mix, add_one, double, label]


async def main(db: str, effects: str, n: int, incarnation: str) -> None:
    async with Runtime(
        f"sqlite:///{db}",
        tools=make_tools(effects, incarnation, db),
        max_concurrency=MAX_CONCURRENCY,
    ) as rt:
        workflows = {
            "chain6": rt.register(compile_yaml_text(CHAIN6, "chain6.yaml")),
            "fork": rt.register(compile_yaml_text(FORK, "fork.yaml")),
        }
        runs = [await rt.start(workflows[wf], inp, execution_id=eid) for eid, wf, inp in plan(n)]
        for run in runs:
            state = await rt.wait(run.id)
            if state.status != "completed":
                raise SystemExit(f"{run.id} ended {state.status}")
        print(f"done {len(runs)}", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
