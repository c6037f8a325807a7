"""How much workflow input is accepted: generous for real workflows, bounded for hostile ones.

Submitted input is parsed, converted and validated on a machine that serves other work, so the
cost of each step must follow from limits known up front (issue 13: a 435-byte YAML alias
bomb used 3.8 GB; a quadratic check took 19 s on 20,000 nodes). Each limit is checked before
the work it bounds and is reported as a ``WorkflowError`` naming the limit (I10).

The defaults, and why:

- ``max_nodes`` 10,000: hand-written workflows have tens of nodes, generated ones hundreds to
  a few thousand. Validation and graph building are linear; 10,000 nodes take ~0.1 s.
- ``max_edges`` 50,000: five routes per node on average at the node limit.
- ``max_ir_values`` 500,000: every value in an IR dict (mapping entries, list items,
  scalars); 10,000 nodes with a few dozen values of input mapping each fit.
- ``max_depth`` 100: nesting of mappings and lists (input mappings, literals, output
  schemas). The IR's own structure is 5 deep; 100 leaves room for data and keeps every
  recursive consumer (JSON encoders, hashing, printing) far from Python's recursion limit.
  The YAML loader uses the same depth, and bounds its values by
  ``tether.ir.yaml_source.MAX_YAML_VALUES``.

Example::

    check_ir_size(ir, DEFAULT_LIMITS, source="upload.json")   # raises WorkflowInvalid
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.ir.errors import ValidationIssue, WorkflowInvalid


@dataclass(frozen=True)
class InputLimits:
    """Bounds on one submitted workflow; see the module docstring for the defaults."""

    max_nodes: int = 10_000
    max_edges: int = 50_000
    max_ir_values: int = 500_000
    max_depth: int = 100


DEFAULT_LIMITS = InputLimits()


def too_many(what: str, count: int, limit: int, field: str) -> str:
    """The message for a count over its limit, naming the setting that raises it."""
    return f"the workflow has {count} {what}; the limit is {limit} (InputLimits.{field})"


def check_ir_size(ir: Any, limits: InputLimits, source: str) -> None:
    """Refuse an IR dict nesting deeper than ``max_depth`` or holding more than
    ``max_ir_values`` values, without recursion and stopping at the first excess."""
    values = 0
    # (value, depth, where): 'where' names the section or node for the error message.
    stack: list[tuple[Any, int, str]] = [(ir, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        values += 1
        if values > limits.max_ir_values:
            message = f"the IR holds more than {limits.max_ir_values} values; the limit is "
            message += f"{limits.max_ir_values} (InputLimits.max_ir_values)"
            raise WorkflowInvalid([ValidationIssue(path=where, message=message)], source=source)
        if depth > limits.max_depth:
            message = f"the IR nests deeper than {limits.max_depth} levels here; the limit is "
            message += f"{limits.max_depth} (InputLimits.max_depth)"
            raise WorkflowInvalid([ValidationIssue(path=where, message=message)], source=source)
        if isinstance(value, Mapping):
            items: Iterable[tuple[Any, Any]] = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            continue
        for key, item in items:
            # The first two levels name a place ('nodes.fetch', 'edges.3'); deeper ones
            # inherit it, which keeps the walk free of per-value path building.
            inner = f"{where}.{key}" if where else str(key)
            stack.append((item, depth + 1, inner if depth < 2 else where))
