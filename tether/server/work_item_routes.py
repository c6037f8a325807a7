"""Routes of the HTTP worker protocol (see :mod:`tether.server.http_workers`).

Bodies follow the ``jamjet`` SDK client's worker calls (``claim_work_item``,
``complete_work_item``, ``fail_work_item``, ``heartbeat_work_item``); every answer is JSON:
200, or 404 (not a lease token), 409 (refused, with the reason), 422 (a bad body), 503 (a
report not settled yet). ``execution_id``/``node_id``/``worker_id`` in bodies are accepted as
the SDK sends them; the lease token alone says which lease a call is about.

Example (one poll of a worker)::

    POST /work-items/claim {"worker_id": "w1", "queue_types": ["general"]}
    -> {"claimed": true, "work_item": {"id": "<lease token>", "node_id": "fetch", ...}}
    POST /work-items/<lease token>/complete {"output": {...}, "state_patch": {...}}
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import FromPath, JSONBody

from tether.runtime.work import REMOTE_FN_QUEUE
from tether.server.auth import authenticated_caller
from tether.server.http_workers import HttpWorkers
from tether.server.worker_queues import queues_of_caller


class ClaimBody(msgspec.Struct, frozen=True):
    worker_id: str
    queue_types: list[str] = msgspec.field(default_factory=lambda: [REMOTE_FN_QUEUE])


class CompleteBody(msgspec.Struct, frozen=True):
    output: Any = None
    #: What a whole-state step changed (merged into state); ignored for other nodes.
    state_patch: dict[str, Any] | None = None
    duration_ms: int = 0
    execution_id: str | None = None
    node_id: str | None = None


class FailBody(msgspec.Struct, frozen=True):
    error: str = ""
    duration_ms: int = 0
    #: Where the step failed, kept in its ``node_failed`` record (bounded); the ``jamjet``
    #: client sends none.
    traceback: str = ""


class HeartbeatBody(msgspec.Struct, frozen=True):
    worker_id: str | None = None


def _gateway(request: Request[Any, Any, Any]) -> HttpWorkers:
    gateway: HttpWorkers = request.app.state.http_workers
    return gateway


@post("/work-items/claim", status_code=200)
async def claim(request: Request[Any, Any, Any], data: JSONBody[ClaimBody]) -> dict[str, Any]:
    caller = authenticated_caller(request.app.state.api_keys, request)
    credential = None if caller is None else queues_of_caller(caller.user_id, caller.roles)
    return await _gateway(request).claim(data.worker_id, data.queue_types, credential)


@post("/work-items/{item_id:str}/complete", status_code=200)
async def complete(
    request: Request[Any, Any, Any], item_id: FromPath[str], data: JSONBody[CompleteBody]
) -> dict[str, Any]:
    return await _gateway(request).report(
        item_id, ok=True, output=data.output, state_patch=data.state_patch,
        duration_ms=max(0, data.duration_ms),
    )  # fmt: skip


@post("/work-items/{item_id:str}/fail", status_code=200)
async def fail(
    request: Request[Any, Any, Any], item_id: FromPath[str], data: JSONBody[FailBody]
) -> dict[str, Any]:
    error = data.error or "the worker reported a failure without a message"
    return await _gateway(request).report(
        item_id, ok=False, error=error, duration_ms=max(0, data.duration_ms),
        traceback=data.traceback,
    )  # fmt: skip


@post("/work-items/{item_id:str}/heartbeat", status_code=200)
async def heartbeat(
    request: Request[Any, Any, Any],
    item_id: FromPath[str],
    data: JSONBody[HeartbeatBody | None] = None,
) -> dict[str, Any]:
    return await _gateway(request).heartbeat(item_id)


ROUTES = [claim, complete, fail, heartbeat]
