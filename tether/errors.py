"""Errors a Tether user can catch. Every message says what went wrong and where."""

from __future__ import annotations

import math


class TetherError(Exception):
    """Base of Tether's own errors."""


class WorkflowNotFound(TetherError, LookupError):
    """No workflow registered under that id (and version)."""


class ExecutionNotFound(TetherError, LookupError):
    """No execution with that id in this runtime's journal."""


class InvalidInput(TetherError, ValueError):
    """An execution's input does not fit the workflow's typed state."""


class UnsupportedNode(TetherError, ValueError):
    """The workflow has a node kind this runtime cannot execute."""


class ExecutionIdInUse(TetherError, ValueError):
    """A start named an execution id that already belongs to another run."""


class ExecutionFailedError(TetherError):
    """Raised by ``Run.result()`` when the execution failed; ``.error`` is the recorded reason."""

    def __init__(self, execution_id: str, error: str) -> None:
        super().__init__(f"execution {execution_id} failed: {error}")
        self.execution_id = execution_id
        self.error = error


class ExecutionCancelledError(TetherError):
    """Raised by ``Run.result()`` when the execution was cancelled."""

    def __init__(self, execution_id: str, reason: str) -> None:
        super().__init__(f"execution {execution_id} was cancelled: {reason}")
        self.execution_id = execution_id
        self.reason = reason


class ExecutionBroken(TetherError):
    """The execution's journal cannot be replayed (corrupt row, unknown record, gap).

    Its rows are left in place for inspection; other executions go on (I7).
    """

    def __init__(self, execution_id: str, problem: str) -> None:
        super().__init__(f"execution {execution_id} is stopped: {problem}")
        self.execution_id = execution_id
        self.problem = problem


class NonRetryableError(TetherError):
    """Raise from a tool to fail its node at once, without spending further attempts."""


#: Longest a rate-limited step is parked, however long its provider asks: a Retry-After of
#: hours is real, of weeks is not (the engine's records and a worker's frames both hold to it).
MAX_RETRY_AFTER_SECS = 7 * 24 * 3600.0


class RateLimited(TetherError):
    """Raise from a tool when its provider rate-limits it; ``retry_after`` is in seconds.

    Not a failure: the work item is parked and retried after ``retry_after`` seconds, and no
    attempt is spent.

    Example::

        raise RateLimited(30, "openai: 429 rate_limit_exceeded")
    """

    def __init__(self, retry_after: float, message: str = "") -> None:
        retry_after = float(retry_after)
        if math.isnan(retry_after):
            raise ValueError("retry_after must be a number of seconds, got NaN")
        # A negative or infinite wait is a provider's mistake, not a reason to stall forever.
        self.retry_after = retry_after if 0 <= retry_after < math.inf else 0.0
        self.message = message or f"rate limited: retry after {self.retry_after:g}s"
        super().__init__(self.message)


class ExecutionNotRunning(TetherError):
    """A signal (event, approval) for an execution that has already finished."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution {execution_id} is {status}: it takes no more signals")
        self.execution_id = execution_id
        self.status = status


class ApprovalNotPending(TetherError, LookupError):
    """An approval for an execution (or node) where no decision is awaited."""


class AmbiguousApproval(TetherError, ValueError):
    """Several approvals are pending in the execution: name the node to decide."""


class ApproverNotAllowed(TetherError, PermissionError):
    """A decision by someone the approval node's ``approvers`` list does not name (by user id
    or role); nothing was recorded."""


class ScheduleNotFound(TetherError, LookupError):
    """No schedule with that id."""
