"""The engine's HTTP API: an ASGI app (Litestar) over one embedded :class:`Runtime`.

Litestar because it validates request bodies straight into msgspec structs (the types the
runtime already uses), publishes an OpenAPI document from the handlers, and has a request
body limit and guards built in; uvicorn serves it. What a browser may send it is
:mod:`.request_gate`, what a body may cost :mod:`.body_check`, who may call it
:mod:`.auth`; how a refusal is answered is :mod:`.error_responses`.

Paths and bodies follow the ``jamjet`` SDK client (``JamjetClient``): ``/health``,
``/workflows``, ``/executions`` (start, list, get, cancel, events, approve, approvals,
external-event), ``/workers`` and the HTTP worker protocol under ``/work-items``; beside them
``/schedules`` (:mod:`.schedule_routes`), ``/metrics`` (:mod:`.metrics_routes`), time
travel, ``/executions/{id}/states`` and ``/fork`` (:mod:`.time_travel_routes`), and the
dashboard at ``/ui`` with the paged cross-run views under ``/views`` (:mod:`.ui`), durable
memory under ``/memory/{user}`` (:mod:`.memory_routes`), and the artifact store under
``/artifacts`` (:mod:`.artifact_routes`; events show a large value as
``{"$artifact": "sha256:..."}``, or whole with ``?artifacts=inline``). Every
error is JSON ``{"error": "..."}`` with a 4xx a person can act on (422 adds ``issues`` with
their IR paths); nothing answers with a traceback.

Example::

    app = create_app(Runtime("sqlite:///.tether/runtime.db", tools=[...]), ServerConfig())
    uvicorn.run(app, host="127.0.0.1", port=7700)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery, JSONBody

from tether.errors import ExecutionBroken, InvalidInput, WorkflowNotFound
from tether.governance.engine_signing import engine_signer
from tether.governance.keys import keys_dir
from tether.governance.redaction.engine import EngineRedaction
from tether.governance.redaction.http_exit import RedactResponses
from tether.governance.redaction.log_exit import install_log_redaction
from tether.governance.redaction.settings import redaction_key
from tether.ir.submitted import compile_submitted_ir
from tether.persistence.contract import EXECUTION_STATUSES
from tether.runtime.assembly import check_client_id
from tether.runtime.internals import runtime_internals
from tether.runtime.metrics import runtime_metrics
from tether.runtime.records import ApprovalReceived
from tether.runtime.runtime import Runtime
from tether.server import (
    a2a_routes,
    artifact_routes,
    audit_routes,
    memory_routes,
    metrics_routes,
    registry_routes,
    schedule_routes,
    time_travel_routes,
    ui,
    work_item_routes,
)
from tether.server.api_keys import ApiKeys
from tether.server.auth import PUBLIC, TokenBeforeBody, authenticated_caller, bearer_guard
from tether.server.body_check import BodyCheck
from tether.server.config import ServerConfig
from tether.server.error_responses import EXCEPTION_HANDLERS
from tether.server.held_runs import announced_view, held_view, registration_warnings
from tether.server.host_names import AllowedHosts
from tether.server.http_worker_entrance import HttpWorkerEntrance
from tether.server.lease_tokens import LeaseKey
from tether.server.msgspec_litestar import MsgspecLitestar
from tether.server.request_gate import ANY_HOST, RequestGate
from tether.server.strategy_events import strategy_labels
from tether.server.views import events_view, execution_view, iso
from tether.server.workflow_files import workflow_file
from tether.telemetry.setup import tracing_from_env

VERSION = "0.1.0"
#: The decider of an approval sent with the shared token (or none) and no ``user_id``.
ANONYMOUS = "anonymous"
#: What ``GET /executions?status=`` may ask for.
_STATUSES: Final = EXECUTION_STATUSES
#: Paging past this is a mistake (and beyond what SQLite's integers hold near 2**63).
MAX_OFFSET = 1_000_000_000
#: The largest sequence number a journal can hold (SQLite's and Postgres' bigint).
MAX_SEQ: Final = 2**63 - 1


class RegisterWorkflow(msgspec.Struct, frozen=True):
    ir: dict[str, Any]


class StartExecution(msgspec.Struct, frozen=True):
    workflow_id: str
    input: dict[str, Any] = {}
    workflow_version: str | None = None
    execution_id: str | None = None


class CancelBody(msgspec.Struct, frozen=True):
    reason: str = ""


class ApproveBody(msgspec.Struct, frozen=True):
    decision: str
    #: Who decides. A caller with a named token is its user: leave it out, or give the same.
    user_id: str | None = None
    comment: str = ""
    state_patch: dict[str, Any] = {}
    node_id: str | None = None


class ExternalEvent(msgspec.Struct, frozen=True):
    correlation_key: str
    payload: Any = None
    event_id: str | None = None


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@get("/health", opt={PUBLIC: True, ANY_HOST: True})
async def health() -> dict[str, str]:
    return {"status": "ok", "version": VERSION}


@get("/openapi.json", opt={PUBLIC: True}, include_in_schema=False)
async def openapi(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


@post("/workflows", status_code=201)
async def register_workflow(
    request: Request[Any, Any, Any], data: JSONBody[RegisterWorkflow]
) -> dict[str, Any]:
    rt = _rt(request)
    # Compiled and validated in a thread: a large IR must not stall the event loop (and with
    # it every run and /health); register then re-checks in linear time.
    submitted = await anyio.to_thread.run_sync(compile_submitted_ir, data.ir)
    wf = rt.register(submitted)
    await runtime_internals(rt).persist(wf)
    request.app.state.redaction.add(wf)  # its governance.redact applies from now on
    digest = runtime_internals(rt).digest(wf)  # computed once, at registration
    answer: dict[str, Any] = {
        "workflow_id": wf.workflow_id, "version": wf.version, "digest": digest
    }  # fmt: skip
    warnings = registration_warnings(rt, wf)  # tools only workers will serve, none yet
    if warnings:
        answer["warnings"] = warnings
    return answer


@get("/workflows")
async def list_workflows(request: Request[Any, Any, Any]) -> dict[str, Any]:
    rows = await _rt(request).list_workflows()
    return {
        "workflows": [
            {
                "workflow_id": r.workflow_id,
                "version": r.version,
                "digest": r.digest,
                "created_at": iso(r.created_at_ms),
            }
            for r in rows
        ]
    }


@post("/executions", status_code=201)
async def start_execution(
    request: Request[Any, Any, Any], data: JSONBody[StartExecution]
) -> dict[str, Any]:
    rt = _rt(request)
    ref = (
        data.workflow_id
        if data.workflow_version is None
        else (f"{data.workflow_id}@{data.workflow_version}")
    )
    if data.execution_id is not None:
        check_client_id(data.execution_id)  # 422 before anything is registered or started
    try:
        run = await rt.start(ref, data.input, execution_id=data.execution_id)
    except WorkflowNotFound:
        path = workflow_file(data.workflow_id, request.app.state.workflow_root)
        if path is None:
            raise
        # The YAML compiler loads here, for the first run of a file nobody registered: an
        # engine start (every restart after a crash) needs none of it.
        from tether.ir import compile_yaml_file

        wf = rt.register(await anyio.to_thread.run_sync(compile_yaml_file, path))
        await runtime_internals(rt).persist(wf)
        request.app.state.redaction.add(wf)
        run = await rt.start(wf.ref, data.input, execution_id=data.execution_id)
    state = await rt.state(run.id)
    return {"execution_id": run.id, "status": state.display_status}


@get("/executions")
async def list_executions(
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    workflow_id: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    offset: FromQuery[int] = 0,
) -> dict[str, Any]:
    if not 1 <= limit <= 1000 or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(
            f"limit must be 1-1000 and offset 0-{MAX_OFFSET}, got {limit} and {offset}"
        )
    if status is not None and status not in _STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(_STATUSES)}, got {status!r}")
    rows = await _rt(request).list_executions(status, workflow_id, limit, offset)
    return {
        "executions": [execution_view(r, None) for r in rows],
        "limit": limit,
        "offset": offset,
    }


@get("/executions/{execution_id:str}")
async def get_execution(
    request: Request[Any, Any, Any], execution_id: FromPath[str]
) -> dict[str, Any]:
    rt = _rt(request)
    segment = await rt.current_segment(execution_id)  # a continued run: its live segment
    row = await rt.get_execution(segment)  # 404 for an unknown id
    try:
        state = await rt.state(segment)
    except ExecutionBroken:
        state = None
    view = execution_view(row, state)
    view["execution_id"], view["segment_id"] = execution_id, segment
    view["forked_from"] = await time_travel_routes.fork_link(rt, execution_id)
    view["held"] = held_view(rt, segment)  # nodes waiting for a worker serving their tool
    return view


@post("/executions/{execution_id:str}/cancel", status_code=200)
async def cancel_execution(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    data: JSONBody[CancelBody | None] = None,
) -> dict[str, Any]:
    rt = _rt(request)
    cancelled = await rt.cancel(execution_id, reason=data.reason if data else "")
    row = await rt.get_execution(execution_id)
    return {"execution_id": execution_id, "cancelled": cancelled, "status": row.status}


@get("/executions/{execution_id:str}/events")
async def get_events(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    node_id: FromQuery[str | None] = None,
    from_seq: FromQuery[int] = 1,
    artifacts: FromQuery[str] = "ref",
) -> dict[str, Any]:
    if not 1 <= from_seq <= MAX_SEQ:  # beyond: the store cannot even bind it (was a 500)
        raise InvalidInput(f"from_seq must be 1-{MAX_SEQ}, got {from_seq}")
    if artifacts not in ("ref", "inline"):  # large values: {"$artifact": ...}, or the values
        raise InvalidInput(f"artifacts must be ref or inline, got {artifacts!r}")
    rt = _rt(request)
    read = rt.journal if artifacts == "inline" else rt.stored_journal
    entries = await read(execution_id, from_seq)
    events = events_view(entries, await _strategy_labels(rt, execution_id))
    if node_id is not None:
        events = [e for e in events if e.get("node_id") == node_id]
    return {"events": events}


async def _strategy_labels(rt: Runtime, execution_id: str) -> dict[str, dict[str, str]]:
    """A strategy run's node labels, for its derived events (empty for any other run)."""
    row = await rt.get_execution(execution_id)
    try:
        workflow = await rt.workflow(f"{row.workflow_id}@{row.workflow_version}")
    except WorkflowNotFound:
        return {}
    return strategy_labels(workflow)


@post("/executions/{execution_id:str}/approve", status_code=200)
async def approve(
    request: Request[Any, Any, Any], execution_id: FromPath[str], data: JSONBody[ApproveBody]
) -> dict[str, Any]:
    rt = _rt(request)
    keys: ApiKeys = request.app.state.api_keys
    caller = authenticated_caller(keys, request)
    roles: tuple[str, ...]
    if caller is None:  # the shared token (or none): the body says who, checked like any id
        user_id, roles = data.user_id or ANONYMOUS, ()
        if keys.has_named(user_id):  # every worker holds the shared token: no impersonation
            raise PermissionDeniedException(
                f"user {user_id!r} has a named token: decide with it, not the shared token"
            )
    elif data.user_id in (None, caller.user_id):
        user_id, roles = caller.user_id, caller.roles
    else:
        raise PermissionDeniedException(
            f"your token stands for user {caller.user_id!r}: leave user_id out or give "
            f"{caller.user_id!r}, got {data.user_id!r}"
        )
    before = await rt.state(await rt.current_segment(execution_id))
    pending = [n for n, _ in before.pending_approvals()]
    await rt.approve(
        execution_id, data.decision, user_id, data.comment,
        state_patch=data.state_patch, node_id=data.node_id, roles=roles,
    )  # fmt: skip
    node = data.node_id or (pending[0] if len(pending) == 1 else None)
    return {"execution_id": execution_id, "node_id": node, "accepted": True}


@get("/executions/{execution_id:str}/approvals")
async def approvals(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    rt = _rt(request)
    segment = await rt.current_segment(execution_id)
    state = await rt.state(segment)
    pending = [
        {"node_id": n, "description": w.description, "requested_at": iso(w.since_ms),
         "timeout_at": iso(w.fire_at_ms)}
        for n, w in state.pending_approvals()
    ]  # fmt: skip
    decided = [
        {"node_id": r.node_id, "status": r.decision, "user_id": r.user_id,
         "comment": r.comment, "sequence": e.seq, "decided_at": iso(r.at_ms)}
        for e in await rt.journal(segment)
        if isinstance(r := e.record, ApprovalReceived)
    ]  # fmt: skip
    return {"execution_id": execution_id, "pending": pending, "decided": decided}


@post("/executions/{execution_id:str}/external-event", status_code=200)
async def external_event(
    request: Request[Any, Any, Any], execution_id: FromPath[str], data: JSONBody[ExternalEvent]
) -> dict[str, Any]:
    accepted = await _rt(request).send_event(
        execution_id, data.correlation_key, data.payload, event_id=data.event_id
    )
    return {"execution_id": execution_id, "accepted": accepted}


@get("/workers")
async def workers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    rt = _rt(request)
    return {"workers": rt.workers(), "tools": announced_view(rt)}  # tools: what workers announce


def create_app(runtime: Runtime, config: ServerConfig, *, open_runtime: bool = True) -> Litestar:
    """The API over ``runtime``; the app's lifespan opens and closes the runtime unless
    ``open_runtime`` is False (the caller holds it open around the server)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = runtime
        app.state.workflow_root = Path.cwd()  # `jamjet run workflow.yaml` names files here
        async with AsyncExitStack() as stack:
            key = LeaseKey.for_engine(config.lease_key)  # lease tokens: see lease_tokens
            entrance = HttpWorkerEntrance(
                runtime, key, lease_ttl_secs=config.http_lease_ttl_ms / 1000,
                queues=config.http_worker_queues,
            )  # fmt: skip
            if open_runtime:  # adopted inside the start, with the other worker transports
                runtime.add_transport(entrance)
                stack.callback(runtime.remove_transport, entrance)
                await stack.enter_async_context(runtime)
            app.state.metrics = runtime_metrics(runtime)  # counting from here (GET /metrics)
            gateway = await entrance.opened()  # adopts now if the caller held the runtime open
            app.state.http_workers = gateway
            services = runtime_internals(runtime).services
            await redaction.load(services.store)  # the registered workflows' policies
            stack.callback(install_log_redaction(redaction))
            signer = engine_signer(services.store, services.clock)
            if signer is not None:  # signs the audit chain's heads while the engine runs
                await stack.enter_async_context(signer)
            tg = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(gateway.keep_alive)
            # Spans from the journal when OTEL_EXPORTER_OTLP_ENDPOINT is set (else nothing).
            tracing = await tracing_from_env(runtime, tg, os.environ, redaction.span_processor)
            yield
            if tracing is not None:
                await tracing.aclose()
            tg.cancel_scope.cancel()

    keys = config.api_keys()
    # PII redaction at the API's, the logs' and the traces' exits (tether.governance.redaction)
    redaction = EngineRedaction(config.redact, lambda: redaction_key(os.environ, keys_dir()))

    return MsgspecLitestar(
        route_handlers=[
            health,
            openapi,
            register_workflow,
            list_workflows,
            start_execution,
            list_executions,
            get_execution,
            cancel_execution,
            get_events,
            approve,
            approvals,
            external_event,
            workers,
            *registry_routes.ROUTES,
            *schedule_routes.ROUTES,
            *work_item_routes.ROUTES,
            *metrics_routes.ROUTES,
            *time_travel_routes.ROUTES,
            *a2a_routes.ROUTES,
            *ui.ROUTES,
            *audit_routes.ROUTES,
            *memory_routes.ROUTES,
            *artifact_routes.ROUTES,
        ],
        lifespan=[lifespan],
        state=State({"api_keys": keys, "redaction": redaction}),
        middleware=[
            RedactResponses(redaction),
            RequestGate(AllowedHosts.for_server(config.bind, config.port, config.allowed_hosts)),
            # After the gate, and before a byte of a body is read: a caller without a token
            # (the guard below checks requests without a body).
            TokenBeforeBody(keys),
            BodyCheck(config.max_body_bytes, config.header_timeout_secs),
        ],
        guards=[bearer_guard(keys)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=config.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Tether engine", version=VERSION),
        logging_config=None,
    )
