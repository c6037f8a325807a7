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

# Type checkers read the imports below (``X as X`` exports each name); at run time the same
# names load on first use from the homes in _HOMES. tests/test_public_surface.py checks the
# two say the same, and pins the list. (The homes are not parsed from this file at import:
# an application frozen without sources must still import Tether.)
if TYPE_CHECKING:
    from tether.deployment import DeployError as DeployError
    from tether.deployment import Deployment as Deployment
    from tether.deployment import deploy as deploy
    from tether.embedded import Runtime as Runtime
    from tether.errors import AmbiguousApproval as AmbiguousApproval
    from tether.errors import ApprovalNotPending as ApprovalNotPending
    from tether.errors import ApproverNotAllowed as ApproverNotAllowed
    from tether.errors import ExecutionBroken as ExecutionBroken
    from tether.errors import ExecutionCancelledError as ExecutionCancelledError
    from tether.errors import ExecutionFailedError as ExecutionFailedError
    from tether.errors import ExecutionIdInUse as ExecutionIdInUse
    from tether.errors import ExecutionNotFound as ExecutionNotFound
    from tether.errors import ExecutionNotRunning as ExecutionNotRunning
    from tether.errors import InvalidInput as InvalidInput
    from tether.errors import NonRetryableError as NonRetryableError
    from tether.errors import RateLimited as RateLimited
    from tether.errors import ScheduleNotFound as ScheduleNotFound
    from tether.errors import TetherError as TetherError
    from tether.errors import UnsupportedNode as UnsupportedNode
    from tether.errors import WorkflowNotFound as WorkflowNotFound
    from tether.persistence import WorkflowVersionConflict as WorkflowVersionConflict
    from tether.runtime import ExecutionState as ExecutionState
    from tether.runtime import JournalEntry as JournalEntry
    from tether.runtime import Run as Run
    from tether.runtime import Tool as Tool
    from tether.runtime import tool as tool
    from tether.runtime.code_first.calls import NondeterminismError as NondeterminismError
    from tether.runtime.code_first.calls import StepFailed as StepFailed
    from tether.runtime.code_first.calls import current_context as current_context
    from tether.runtime.code_first.children import ChildFailed as ChildFailed
    from tether.runtime.code_first.context import Decision as Decision
    from tether.runtime.code_first.context import WorkflowContext as WorkflowContext
    from tether.runtime.code_first.decorators import CodeWorkflow as CodeWorkflow
    from tether.runtime.code_first.decorators import Step as Step
    from tether.runtime.code_first.decorators import step as step
    from tether.runtime.code_first.decorators import workflow as workflow


_HOMES: dict[str, str] = {
    "AmbiguousApproval": "tether.errors",
    "ApprovalNotPending": "tether.errors",
    "ApproverNotAllowed": "tether.errors",
    "ExecutionBroken": "tether.errors",
    "ExecutionCancelledError": "tether.errors",
    "ExecutionFailedError": "tether.errors",
    "ExecutionIdInUse": "tether.errors",
    "ExecutionNotFound": "tether.errors",
    "ExecutionNotRunning": "tether.errors",
    "InvalidInput": "tether.errors",
    "NonRetryableError": "tether.errors",
    "RateLimited": "tether.errors",
    "ScheduleNotFound": "tether.errors",
    "TetherError": "tether.errors",
    "UnsupportedNode": "tether.errors",
    "WorkflowNotFound": "tether.errors",
    "WorkflowVersionConflict": "tether.persistence",
    "ExecutionState": "tether.runtime",
    "JournalEntry": "tether.runtime",
    "Run": "tether.runtime",
    "Runtime": "tether.embedded",
    "Tool": "tether.runtime",
    "tool": "tether.runtime",
    "CodeWorkflow": "tether.runtime.code_first.decorators",
    "Decision": "tether.runtime.code_first.context",
    "NondeterminismError": "tether.runtime.code_first.calls",
    "Step": "tether.runtime.code_first.decorators",
    "StepFailed": "tether.runtime.code_first.calls",
    "ChildFailed": "tether.runtime.code_first.children",
    "current_context": "tether.runtime.code_first.calls",
    "WorkflowContext": "tether.runtime.code_first.context",
    "step": "tether.runtime.code_first.decorators",
    "workflow": "tether.runtime.code_first.decorators",
    "DeployError": "tether.deployment",
    "Deployment": "tether.deployment",
    "deploy": "tether.deployment",
}


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_HOMES)
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
