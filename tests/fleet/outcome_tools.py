"""Tools and workflows for the same-journal test (``--modules outcome_tools``): one outcome of
each kind, run embedded and on a ``tether worker`` process."""

from __future__ import annotations

from typing import Final

import anyio

from tether.runtime.tools import tool

#: The timeout of the node whose tool never answers in time.
TIMEOUT_SECS: Final = 0.3


@tool
async def succeed(n: int) -> dict[str, int]:
    return {"n": n + 1}


@tool
async def explode(msg: str) -> None:
    _deeper(msg)


def _deeper(msg: str) -> None:
    raise ValueError(msg)


@tool
def explode_in_thread(msg: str) -> None:
    raise KeyError(msg)


@tool
async def stall() -> None:
    await anyio.sleep(60)


@tool
async def opaque() -> object:
    return object()


TOOLS: Final = [succeed, explode, explode_in_thread, stall, opaque]


def workflow_yaml(name: str, tool_name: str, args: str, extra: str = "") -> str:
    """One tool node, two attempts at once: a retryable failure is recorded twice."""
    return f"""
workflow:
  id: outcome-{name}
  version: "1"
nodes:
  work:
    type: tool
    tool: {tool_name}
    input: {{{args}}}
    output_key: result
    retry: {{max_attempts: 2, backoff_initial_secs: 0, jitter: 0}}{extra}
    next: end
"""


#: Each case: (execution id, workflow YAML). The ids are the same on both runtimes.
CASES: Final = {
    "succeeds": workflow_yaml("succeeds", "succeed", "n: 41"),
    "raises": workflow_yaml("raises", "explode", "msg: boom"),
    "raises-in-thread": workflow_yaml("raises-in-thread", "explode_in_thread", "msg: gone"),
    "times-out": workflow_yaml("times-out", "stall", "", f"\n    timeout: {TIMEOUT_SECS}"),
    "unserializable": workflow_yaml("unserializable", "opaque", ""),
}
