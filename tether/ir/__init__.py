"""The workflow IR: structs, the YAML compiler, jamjet IR import, validation, conditions.

Example::

    from tether.ir import compile_yaml_file, check
    wf = compile_yaml_file("examples/counter.yaml")   # validated; errors name file:line

The YAML compiler (and PyYAML) load on first use: a process that runs code-defined or
registered workflows, such as an engine restarting to recover its runs, does not pay for them.
"""

from typing import TYPE_CHECKING, Any

from tether.ir.conditions import Condition, compile_condition
from tether.ir.errors import (
    ConditionEvalError,
    ConditionSyntaxError,
    ValidationIssue,
    WorkflowError,
    WorkflowInvalid,
    WorkflowSyntaxError,
)
from tether.ir.jamjet_ir import workflow_from_ir
from tether.ir.limits import DEFAULT_LIMITS, InputLimits
from tether.ir.submitted import compile_submitted_ir
from tether.ir.types import (
    CONTROL_KINDS,
    END,
    STATE_TYPES,
    A2aTaskKind,
    AgentKind,
    BranchCase,
    BranchKind,
    ConditionKind,
    Edge,
    EndKind,
    EvalKind,
    HttpKind,
    HumanApprovalKind,
    JoinKind,
    LimitExceededKind,
    McpToolKind,
    MemoryRetrievalKind,
    MemoryWriteKind,
    ModelKind,
    Node,
    NodeKind,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
    RunCodeKind,
    SourceLocation,
    StateField,
    Timeouts,
    ToolKind,
    WaitKind,
    Workflow,
    decode_workflow,
    encode_workflow,
)
from tether.ir.validation import check, successors, validate

if TYPE_CHECKING:
    from tether.ir.yaml_compiler import compile_yaml_file, compile_yaml_text

__all__ = [
    "CONTROL_KINDS",
    "DEFAULT_LIMITS",
    "END",
    "STATE_TYPES",
    "A2aTaskKind",
    "AgentKind",
    "BranchCase",
    "BranchKind",
    "Condition",
    "ConditionEvalError",
    "ConditionKind",
    "ConditionSyntaxError",
    "Edge",
    "EndKind",
    "EvalKind",
    "HttpKind",
    "HumanApprovalKind",
    "InputLimits",
    "JoinKind",
    "LimitExceededKind",
    "McpToolKind",
    "MemoryRetrievalKind",
    "MemoryWriteKind",
    "ModelKind",
    "Node",
    "NodeKind",
    "ParallelKind",
    "PythonFnKind",
    "RetryPolicy",
    "RunCodeKind",
    "SourceLocation",
    "StateField",
    "Timeouts",
    "ToolKind",
    "ValidationIssue",
    "WaitKind",
    "Workflow",
    "WorkflowError",
    "WorkflowInvalid",
    "WorkflowSyntaxError",
    "check",
    "compile_condition",
    "compile_submitted_ir",
    "compile_yaml_file",
    "compile_yaml_text",
    "decode_workflow",
    "encode_workflow",
    "successors",
    "validate",
    "workflow_from_ir",
]


def __getattr__(name: str) -> Any:
    if name in ("compile_yaml_file", "compile_yaml_text"):
        from tether.ir import yaml_compiler

        return getattr(yaml_compiler, name)
    raise AttributeError(f"module 'tether.ir' has no attribute {name!r}")
