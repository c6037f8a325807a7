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

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The one list of the public names: type checkers read these imports (``X as X`` exports
# them), and at run time the same statements, read from this file, say where each name
# lives so it loads on first use.
if TYPE_CHECKING:
    from tether.errors import AmbiguousApproval as AmbiguousApproval
    from tether.errors import ApprovalNotPending as ApprovalNotPending
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
    from tether.runtime import Runtime as Runtime
    from tether.runtime import Tool as Tool
    from tether.runtime import tool as tool


def _read_homes() -> dict[str, str]:
    """Public name -> module, from the ``if TYPE_CHECKING:`` block above."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body
        if isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"
    )  # fmt: skip
    return {
        alias.asname or alias.name: str(stmt.module)
        for stmt in block.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }


_homes: dict[str, str] = {}


def _all_homes() -> dict[str, str]:
    if not _homes:
        _homes.update(_read_homes())
    return _homes


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_all_homes())
    home = _all_homes().get(name)
    if home is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
