"""Execution: the ExecutionActor, the planner and fold, executors and the embedded Runtime."""

from tether.runtime.executor import InProcessExecutor, NodeExecutor, NodeOutcome, WorkItem
from tether.runtime.records import JournalEntry, Record
from tether.runtime.run import Run
from tether.runtime.runtime import DEFAULT_DATABASE_URL, Runtime
from tether.runtime.state import ExecutionState
from tether.runtime.state_types import NodeRun
from tether.runtime.tools import Tool, ToolRegistry, tool

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ExecutionState",
    "InProcessExecutor",
    "JournalEntry",
    "NodeExecutor",
    "NodeOutcome",
    "NodeRun",
    "Record",
    "Run",
    "Runtime",
    "Tool",
    "ToolRegistry",
    "WorkItem",
    "tool",
]
