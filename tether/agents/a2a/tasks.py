"""The A2A JSON-RPC methods a Tether engine answers (protocol 0.3): ``message/send`` starts a
run of the skill's workflow, ``tasks/get`` reads it, ``tasks/cancel`` cancels it. A task is a
run: its id is the execution id.

A message's id names its task for good: the run's id is derived from the workflow and the
``messageId`` (``a2a-`` and a hash), so a client that sends the same message again (its
retry after a timeout, a restarted delegator re-sending a journaled call) gets the same task,
started once. The run's input is the message's data parts merged, or ``{"text": ...}`` when
it has only text.

Example::

    service = A2aTasks(rt)
    reply = await service.handle({"jsonrpc": "2.0", "id": 1, "method": "message/send",
                                  "params": {"message": {...}, "metadata": {"skill": "research"}}})
    reply["result"]["status"]["state"]          # "working"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import anyio

from tether.errors import ExecutionNotFound, InvalidInput, WorkflowNotFound
from tether.ir.types import Workflow
from tether.runtime.records import NodeCompleted
from tether.runtime.runtime import Runtime

# JSON-RPC and A2A error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TASK_NOT_FOUND, TASK_NOT_CANCELABLE = -32001, -32002
#: How long a blocking ``message/send`` waits for the run to end before answering "working".
BLOCKING_WAIT_SECS: Final = 30.0

_STATES: Final = {
    "new": "submitted", "running": "working", "paused": "input-required",
    "completed": "completed", "failed": "failed", "limit_exceeded": "failed",
    "cancelled": "canceled",
}  # fmt: skip


class A2aError(Exception):
    """A JSON-RPC error answer: ``code`` and a message that says what to fix."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def task_execution_id(workflow_id: str, message_id: str) -> str:
    """The run a message starts: the same message, the same run."""
    digest = hashlib.sha256(f"{workflow_id}\n{message_id}".encode()).hexdigest()
    return f"a2a-{digest[:40]}"


def message_input(message: Mapping[str, Any]) -> dict[str, Any]:
    """The run's input: the data parts merged, else the text parts as ``{"text": ...}``."""
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        raise A2aError(INVALID_PARAMS, "message.parts must be a non-empty list")
    data: dict[str, Any] = {}
    texts = []
    for i, part in enumerate(parts):
        kind = part.get("kind") if isinstance(part, Mapping) else None
        if kind == "data" and isinstance(part.get("data"), Mapping):
            data.update(part["data"])
        elif kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            raise A2aError(
                INVALID_PARAMS,
                f"message.parts[{i}]: Tether takes data parts (a JSON object) and text parts",
            )
    if not data and texts:
        data["text"] = "\n".join(texts)
    return data


class A2aTasks:
    """The JSON-RPC methods over one runtime. ``skill``: the workflow a per-agent endpoint
    is bound to (None: the engine's endpoint, which reads ``metadata.skill``)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def handle(self, body: Any, skill: str | None = None) -> dict[str, Any]:
        """One JSON-RPC request -> its answer (errors answered, never raised)."""
        rpc_id = body.get("id") if isinstance(body, dict) else None
        try:
            if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
                raise A2aError(INVALID_REQUEST, "a JSON-RPC 2.0 request object is expected")
            method, params = body.get("method"), body.get("params")
            if not isinstance(params, dict):
                raise A2aError(INVALID_PARAMS, "params must be an object")
            if method == "message/send":
                result = await self._send(params, skill)
            elif method == "tasks/get":
                result = await self._task(_task_id(params), skill)
            elif method == "tasks/cancel":
                result = await self._cancel(_task_id(params), skill)
            else:
                raise A2aError(
                    METHOD_NOT_FOUND,
                    f"method {method!r} is not served here (message/send, tasks/get, tasks/cancel)",
                )
        except A2aError as exc:
            return {
                "jsonrpc": "2.0",
                "id": rpc_id,
                "error": {"code": exc.code, "message": str(exc)},
            }
        return {"jsonrpc": "2.0", "id": rpc_id, "result": result}

    async def _workflow(self, params: Mapping[str, Any], skill: str | None) -> Workflow:
        message = params.get("message")
        meta = params.get("metadata") if isinstance(params.get("metadata"), dict) else {}
        message_meta = message.get("metadata") if isinstance(message, dict) else None
        named = skill or (meta or {}).get("skill") or (message_meta or {}).get("skill")
        if named is None:
            rows = await self._rt.list_workflows()
            ids = sorted({r.workflow_id for r in rows})
            if len(ids) != 1:
                raise A2aError(
                    INVALID_PARAMS,
                    f"name the skill in metadata.skill (one of: {', '.join(ids) or 'none'})",
                )
            named = ids[0]
        try:
            return await self._rt.workflow(str(named))
        except WorkflowNotFound:
            raise A2aError(INVALID_PARAMS, f"no skill {named!r} on this engine") from None

    async def _send(self, params: Mapping[str, Any], skill: str | None) -> dict[str, Any]:
        message = params.get("message")
        if not isinstance(message, dict):
            raise A2aError(INVALID_PARAMS, "params.message must be an object")
        message_id = message.get("messageId")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= 256:
            raise A2aError(INVALID_PARAMS, "message.messageId must be a string of 1-256 chars")
        wf = await self._workflow(params, skill)
        run_input = message_input(message)
        execution_id = task_execution_id(wf.workflow_id, message_id)
        try:
            run = await self._rt.start(wf.ref, run_input, execution_id=execution_id)
        except (InvalidInput, ValueError) as exc:
            raise A2aError(INVALID_PARAMS, f"input for skill {wf.workflow_id!r}: {exc}") from None
        config = params.get("configuration")
        if isinstance(config, dict) and config.get("blocking"):
            with anyio.move_on_after(BLOCKING_WAIT_SECS):
                await self._rt.wait(run.id)
        context = message.get("contextId")
        return await self._task(run.id, None, context if isinstance(context, str) else None)

    async def _task(
        self, task_id: str, skill: str | None, context_id: str | None = None
    ) -> dict[str, Any]:
        try:
            segment = await self._rt.current_segment(task_id)
            row = await self._rt.get_execution(segment)
            state = await self._rt.state(segment)
        except ExecutionNotFound:
            raise A2aError(TASK_NOT_FOUND, f"no task {task_id!r}") from None
        if skill is not None and row.workflow_id != skill:
            raise A2aError(TASK_NOT_FOUND, f"no task {task_id!r} for skill {skill!r}")
        status = state.display_status
        task: dict[str, Any] = {
            "kind": "task",
            "id": task_id,
            "contextId": context_id or task_id,
            "status": {"state": _STATES.get(status, "unknown")},
            "metadata": {"tether": {"workflow": f"{row.workflow_id}@{row.workflow_version}",
                                    "status": status}},
        }  # fmt: skip
        if state.ended_at_ms:
            task["status"]["timestamp"] = _iso(state.ended_at_ms)
            task["metadata"]["cost_usd"] = await self._cost(segment)
        if status == "completed":
            result = state.result
            data = result if isinstance(result, dict) else {"result": result}
            task["artifacts"] = [
                {
                    "artifactId": "result",
                    "name": "result",
                    "parts": [{"kind": "data", "data": data}],
                }
            ]
        elif state.error:
            task["status"]["message"] = {
                "kind": "message", "role": "agent", "messageId": f"{task_id}-status",
                "parts": [{"kind": "text", "text": str(state.error)}],
            }  # fmt: skip
        return task

    async def _cancel(self, task_id: str, skill: str | None) -> dict[str, Any]:
        await self._task(task_id, skill)  # an unknown task: TASK_NOT_FOUND
        try:
            cancelled = await self._rt.cancel(task_id, "cancelled over A2A (tasks/cancel)")
        except ExecutionNotFound:
            raise A2aError(TASK_NOT_FOUND, f"no task {task_id!r}") from None
        if not cancelled:
            raise A2aError(TASK_NOT_CANCELABLE, f"task {task_id!r} has already ended")
        return await self._task(task_id, skill)

    async def _cost(self, execution_id: str) -> float:
        """What the run's calls cost, by their journaled facts (delegated tasks included)."""
        total = 0.0
        for entry in await self._rt.journal(execution_id):
            record = entry.record
            if isinstance(record, NodeCompleted) and record.facts:
                cost = record.facts.get("cost_usd")
                if isinstance(cost, int | float):
                    total += float(cost)
        return round(total, 6)


def _task_id(params: Mapping[str, Any]) -> str:
    task_id = params.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise A2aError(INVALID_PARAMS, "params.id must name a task")
    return task_id


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
