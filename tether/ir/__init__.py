"""The workflow IR: structs, the YAML compiler, jamjet IR import, validation, conditions.

Example::

    from tether.ir import compile_yaml_file, check
    wf = compile_yaml_file("examples/counter.yaml")   # validated; errors name file:line
"""

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
    McpToolKind,
    ModelKind,
    Node,
    NodeKind,
    ParallelKind,
    PythonFnKind,
    RetryPolicy,
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
from tether.ir.yaml_compiler import compile_yaml_file, compile_yaml_text

__all__ = [
    "CONTROL_KINDS",
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
    "JoinKind",
    "McpToolKind",
    "ModelKind",
    "Node",
    "NodeKind",
    "ParallelKind",
    "PythonFnKind",
    "RetryPolicy",
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
    "compile_yaml_file",
    "compile_yaml_text",
    "decode_workflow",
    "encode_workflow",
    "successors",
    "validate",
    "workflow_from_ir",
]
