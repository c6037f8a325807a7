"""How the API answers a failed request: JSON ``{"error": "..."}`` with a status a person can
act on, whichever layer refused it (a guard, Litestar's body parsing, the runtime).

A failure nobody foresaw is a 500 whose body names a request id and the engine's log line
that carries the same id and the traceback: the caller learns what to quote, the operator
where to look, and no traceback reaches the caller.

Example::

    app = Litestar(route_handlers=[...], exception_handlers=EXCEPTION_HANDLERS)
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException

from tether.errors import (
    AmbiguousApproval,
    ApprovalNotPending,
    ApproverNotAllowed,
    ExecutionBroken,
    ExecutionIdInUse,
    ExecutionNotFound,
    ExecutionNotRunning,
    InvalidInput,
    ScheduleNotFound,
    TetherError,
    UnsupportedNode,
    WorkflowNotFound,
)
from tether.ir.errors import WorkflowError, WorkflowInvalid
from tether.persistence import StorageError, WorkflowVersionConflict
from tether.runtime.tools import UnknownTool
from tether.server.http_workers import LeaseAnswerPending
from tether.server.lease_tokens import LeaseNotFound, LeaseRefused
from tether.server.worker_queues import QueueNotAllowed

log = logging.getLogger("tether.server")

_STATUS: Final[list[tuple[type[Exception], int]]] = [
    (ExecutionNotFound, 404),
    (WorkflowNotFound, 404),
    (ScheduleNotFound, 404),
    (WorkflowInvalid, 422),
    (WorkflowError, 422),
    (UnsupportedNode, 422),
    (UnknownTool, 422),
    (InvalidInput, 422),
    (ApproverNotAllowed, 403),
    (ApprovalNotPending, 409),
    (AmbiguousApproval, 409),
    (ExecutionNotRunning, 409),
    (ExecutionIdInUse, 409),
    (ExecutionBroken, 409),
    (LeaseNotFound, 404),
    (LeaseRefused, 409),
    (LeaseAnswerPending, 503),
    (QueueNotAllowed, 403),
    (WorkflowVersionConflict, 409),
]


def domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A refusal by the engine (unknown id, invalid workflow, a conflict): its own status."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            body: dict[str, Any] = {"error": str(exc)}
            if isinstance(exc, WorkflowInvalid):
                body["issues"] = [{"path": i.path, "message": i.message} for i in exc.issues]
            return Response(body, status_code=status)
    if type(exc) is StorageError:
        # The store could not write (a full disk, an I/O error): nothing was done, and the
        # same request may succeed once it can. The engine's fault, not the caller's.
        return Response({"error": str(exc)}, status_code=503)
    if isinstance(exc, TetherError | StorageError):
        return Response({"error": str(exc)}, status_code=400)
    return unexpected_error(request, exc)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Anything else: a 500 naming the request id its log line carries. Running out of
    recursion depth is the caller's input nesting too deeply (a condition, a value): a 400."""
    if isinstance(exc, RecursionError):
        return Response(
            {"error": "the request nests too deeply to process (a condition or a value): "
                      "flatten it"},
            status_code=400,
        )  # fmt: skip
    request_id = secrets.token_hex(6)
    fields = {"request_id": request_id, "method": request.method, "path": request.url.path}
    log.error(
        "unexpected error serving %s %s (request id %s)", request.method, request.url.path,
        request_id, exc_info=exc, extra={"fields": fields},
    )  # fmt: skip
    message = (
        f"internal error ({type(exc).__name__}), request id {request_id}: the engine's log "
        "has the details under that id"
    )
    return Response({"error": message, "request_id": request_id}, status_code=500)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """A refusal by Litestar itself (401 from the guard, a body that is not the route's
    shape, an unknown path): the same ``{"error": ...}`` shape as the engine's own."""
    if exc.status_code >= 500:
        return unexpected_error(request, exc)
    body: dict[str, Any] = {"error": exc.detail}
    if exc.extra:
        body["issues"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)


EXCEPTION_HANDLERS: Final[dict[int | type[Exception], Any]] = {
    TetherError: domain_error,
    WorkflowError: domain_error,
    StorageError: domain_error,
    UnknownTool: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
