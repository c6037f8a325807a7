"""Tether: durable execution for AI agents and workflows, built on the actor model.

Example::

    from tether import Runtime, tool

    @tool
    async def add_one(n: int) -> int:
        return n + 1

    async with Runtime("sqlite:///.tether/runtime.db", tools=[add_one]) as rt:
        run = await rt.start(rt.register_yaml("examples/counter.yaml"), input={"n": 0})
        print(await run.result())

The names below load on first use, so ``import tether.actors`` (usable on its own) does not
pull in the runtime, storage or IR.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.errors import (
        ExecutionBroken,
        ExecutionCancelledError,
        ExecutionFailedError,
        ExecutionIdInUse,
        ExecutionNotFound,
        InvalidInput,
        NonRetryableError,
        TetherError,
        UnsupportedNode,
        WorkflowNotFound,
    )
    from tether.runtime import ExecutionState, JournalEntry, Run, Runtime, Tool, tool

_HOMES = {
    **dict.fromkeys(
        [
            "AmbiguousApproval",
            "ApprovalNotPending",
            "ExecutionBroken",
            "ExecutionCancelledError",
            "ExecutionFailedError",
            "ExecutionIdInUse",
            "ExecutionNotFound",
            "ExecutionNotRunning",
            "InvalidInput",
            "NonRetryableError",
            "RateLimited",
            "ScheduleNotFound",
            "TetherError",
            "UnsupportedNode",
            "WorkflowNotFound",
        ],
        "tether.errors",
    ),
    **dict.fromkeys(
        ["ExecutionState", "JournalEntry", "Run", "Runtime", "Tool", "tool"], "tether.runtime"
    ),
}

__all__ = [
    "AmbiguousApproval",
    "ApprovalNotPending",
    "ExecutionBroken",
    "ExecutionCancelledError",
    "ExecutionFailedError",
    "ExecutionIdInUse",
    "ExecutionNotFound",
    "ExecutionNotRunning",
    "ExecutionState",
    "InvalidInput",
    "JournalEntry",
    "NonRetryableError",
    "RateLimited",
    "Run",
    "Runtime",
    "ScheduleNotFound",
    "TetherError",
    "Tool",
    "UnsupportedNode",
    "WorkflowNotFound",
    "tool",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
