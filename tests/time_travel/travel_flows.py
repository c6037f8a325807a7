"""Workflows and tools the time-travel tests fork: every call is counted, so a test can say
which steps a fork ran again."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import anyio

from tether import step, tool, workflow
from tether.ir import compile_yaml_text

#: Calls per tool/step name and the value it was called with, across a test.
CALLS: Counter[str] = Counter()
#: Set by a test to hold ``slow`` until it says so.
GATE: dict[str, anyio.Event] = {}


@tool
async def bump(n: int) -> int:
    CALLS[f"bump:{n}"] += 1
    return n + 1


@tool
async def slow(n: int) -> int:
    CALLS[f"slow:{n}"] += 1
    gate = GATE.get("slow")
    if gate is not None:
        await gate.wait()
    return n + 10


CHAIN = compile_yaml_text(
    """
workflow: {id: chain, version: "1", start: a, state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: bump, output_key: n, next: b}
  b: {type: tool, tool: bump, output_key: n, next: c}
  c: {type: tool, tool: bump, output_key: n, next: end}
"""
)

GATED = compile_yaml_text(
    """
workflow: {id: gated, version: "1", start: a, state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: bump, output_key: n, next: s}
  s: {type: tool, tool: slow, output_key: n, next: c}
  c: {type: tool, tool: bump, output_key: n, next: end}
"""
)

APPROVAL = compile_yaml_text(
    """
workflow: {id: pay, version: "1", start: a, state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: bump, output_key: n, next: review}
  review:
    type: human_approval
    description: go on?
    next:
      - {to: go, when: "review.decision == 'approved'"}
      - {to: stop}
  go: {type: tool, tool: bump, output_key: n, next: end}
  stop: {type: tool, tool: bump, input: {n: 100}, output_key: n, next: end}
"""
)


@step
async def add(n: int, k: int) -> int:
    CALLS[f"add:{n}+{k}"] += 1
    return n + k


@workflow(id="code_chain", version="1")
async def code_chain(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    a = await add(data["n"], 1)
    when = ctx.now()
    b, c = await asyncio.gather(add(a, 2), add(a, 3))
    d = await add(b + c, 4)
    return {"d": d, "when": when}
