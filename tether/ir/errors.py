"""Errors raised by the IR layer; every one is a ``WorkflowError`` (a ``ValueError``).

Messages follow ``file:line: problem`` whenever the source position is known, so a CLI can
print them as they are (I10: say what and where).

Example::

    try:
        compile_yaml_file(Path("examples/invalid.yaml"))
    except WorkflowError as exc:
        print(exc)          # examples/invalid.yaml:9: node 'fetch': unknown node type 'tol' ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.ir.types import SourceLocation


class WorkflowError(ValueError):
    """Base of every error the IR layer raises."""


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a workflow: ``path`` is a dotted IR path like ``nodes.fetch.next``."""

    path: str
    message: str
    location: SourceLocation | None = None

    def __str__(self) -> str:
        if self.location is None:
            return f"{self.path}: {self.message}"
        return f"{_where(self.location)}: {self.message}"


def _where(loc: SourceLocation) -> str:
    return f"{loc.file}:{loc.line}:{loc.column}" if loc.column else f"{loc.file}:{loc.line}"


class WorkflowSyntaxError(WorkflowError):
    """The source text (YAML or an IR dict) is malformed; carries the location when known."""

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(message if location is None else f"{_where(location)}: {message}")


class WorkflowInvalid(WorkflowError):
    """The workflow is well-formed but breaks graph rules; ``issues`` lists every problem."""

    def __init__(self, issues: Sequence[ValidationIssue], source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        lines = [
            f"{source}: {issue}" if source is not None and issue.location is None else str(issue)
            for issue in self.issues
        ]
        super().__init__("\n".join(lines))


class ConditionSyntaxError(WorkflowError):
    """A condition expression does not parse. ``column`` is 1-based within ``source``."""

    def __init__(self, source: str, column: int, reason: str) -> None:
        self.source = source
        self.column = column
        self.reason = reason
        caret = " " * (column - 1) + "^"
        super().__init__(
            f"invalid condition at column {column}: {reason}\n    {source}\n    {caret}"
        )


class ConditionEvalError(WorkflowError):
    """A condition could not be evaluated against a state (e.g. ``null < 3``)."""
