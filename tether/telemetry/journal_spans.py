"""Spans made from committed journal records, with the records' own times.

:class:`JournalSpans` reads each committed turn's records (after the commit: what happened)
and makes finished spans: a run's ``execution`` span from its start to its end, a ``node``
span per hand-out (attempt) from its scheduling to its outcome, inside it the ``chat`` span
of a model call or the ``execute_tool`` span of a tool call (its run time, the outcome's
``duration_ms``), and a ``wait`` span per wait or approval. Attributes follow Tether's
names (``tether.execution_id``, ``tether.node_id``, ``tether.attempt``, ``tether.worker_id``,
``tether.workflow_id``, ``tether.workflow_version``) and OpenTelemetry's GenAI conventions
for model calls. Ids come from :mod:`tether.telemetry.trace_ids`.

What it keeps between turns is only what spans still open need: the time each hand-out,
wait and execution started (dropped when it ends). A hand-out scheduled before the engine
started is dated from its outcome (start = end - duration).

Example::

    maker = JournalSpans(resource, workflow_of)
    spans = await maker.turn("exec_1", records)     # finished ReadableSpans
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tether.runtime.records import (
    ApprovalReceived,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionLimited,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    NodeWaiting,
    Record,
    SegmentBoundary,
    SegmentStarted,
    WaitCompleted,
)
from tether.telemetry.trace_ids import (
    attempt_span_id,
    call_span_id,
    execution_span_id,
    root_of,
    trace_id,
)

SCOPE: Final = InstrumentationScope("tether", "0.1.0")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ENDS = (ExecutionCompleted, ExecutionFailed, ExecutionCancelled, ExecutionLimited)

#: ``(workflow_id, version, created_at_ms)`` of an execution, read when its start was not
#: seen (it started before this engine did), and what a node is (for a call span's name).
WorkflowOf = Callable[[str], Awaitable[tuple[str, str, int]]]
#: ``(kind, tool)`` of a node of a workflow version: ``("tool", "add_one")``, ``("model",
#: "")``, ``("agent", "")``, ``("other", "")``.
NodeKindOf = Callable[[str, str, str], Awaitable[tuple[str, str]]]


class _Run:
    __slots__ = ("started_ms", "version", "workflow")

    def __init__(self, workflow: str, version: str, started_ms: int) -> None:
        self.workflow, self.version, self.started_ms = workflow, version, started_ms


class JournalSpans:
    """Turns committed records into finished spans (see the module docstring)."""

    def __init__(self, resource: Resource, workflow_of: WorkflowOf, node_kind: NodeKindOf) -> None:
        self._resource = resource
        self._workflow_of = workflow_of
        self._node_kind = node_kind
        self._runs: dict[str, _Run] = {}
        #: (execution, node, dispatch) -> (scheduled at, the hand-out's input) while in flight.
        self._handed: dict[tuple[str, str, int], tuple[int, dict[str, Any]]] = {}
        self._waits: dict[tuple[str, str, int], int] = {}

    @property
    def open_count(self) -> int:
        """Hand-outs, waits and executions whose span is not finished yet."""
        return len(self._handed) + len(self._waits) + len(self._runs)

    async def turn(self, execution_id: str, records: Sequence[Record]) -> list[ReadableSpan]:
        out: list[ReadableSpan] = []
        for rec in records:
            if isinstance(rec, ExecutionStarted | SegmentStarted):
                self._runs[execution_id] = _Run(rec.workflow_id, rec.workflow_version, rec.at_ms)
            elif isinstance(rec, NodeScheduled):
                self._handed[(execution_id, rec.node_id, rec.dispatch)] = (rec.at_ms, rec.input)
            elif isinstance(rec, NodeCompleted | NodeFailed) and rec.dispatch > 0:
                out += await self._attempt(execution_id, rec)
            elif isinstance(rec, NodeWaiting):
                self._waits[(execution_id, rec.node_id, rec.dispatch)] = rec.at_ms
            elif isinstance(rec, WaitCompleted | ApprovalReceived):
                out += await self._wait(execution_id, rec)
            elif isinstance(rec, (*_ENDS, SegmentBoundary)):
                out.append(await self._execution(execution_id, rec))
        return out

    async def _run(self, execution_id: str) -> _Run:
        run = self._runs.get(execution_id)
        if run is None:
            workflow, version, created = await self._workflow_of(execution_id)
            run = self._runs[execution_id] = _Run(workflow, version, created)
        return run

    def _base(self, execution_id: str, run: _Run) -> dict[str, Any]:
        return {
            "tether.execution_id": execution_id,
            "tether.root_execution_id": root_of(execution_id),
            "tether.workflow_id": run.workflow,
            "tether.workflow_version": run.version,
        }

    async def _attempt(
        self, execution_id: str, rec: NodeCompleted | NodeFailed
    ) -> list[ReadableSpan]:
        run = await self._run(execution_id)
        began = rec.at_ms - rec.duration_ms
        scheduled, given = self._handed.pop((execution_id, rec.node_id, rec.dispatch), (began, {}))
        attrs = self._base(execution_id, run) | {
            "tether.node_id": rec.node_id,
            "tether.attempt": rec.attempt,
            "tether.dispatch": rec.dispatch,
            "tether.worker_id": rec.worker_id or "local",
            "tether.queue_wait_ms": max(began - scheduled, 0),
        }
        status = _ok()
        if isinstance(rec, NodeFailed):
            attrs["error.type"] = rec.error_type
            attrs["tether.retryable"] = rec.retryable
            status = Status(StatusCode.ERROR, rec.error[:1024])
        parent = self._context(execution_id, execution_span_id(execution_id))
        attempt_ctx = self._context(
            execution_id, attempt_span_id(execution_id, rec.node_id, rec.dispatch)
        )
        attempt = self._span(
            f"node {rec.node_id}", attempt_ctx, parent, attrs, scheduled, rec.at_ms, status
        )
        call = await self._call(execution_id, run, rec, given, attrs, attempt_ctx, began, status)
        return [attempt] if call is None else [call, attempt]

    async def _call(
        self,
        execution_id: str,
        run: _Run,
        rec: NodeCompleted | NodeFailed,
        given: dict[str, Any],
        attrs: dict[str, Any],
        parent: SpanContext,
        began: int,
        status: Status,
    ) -> ReadableSpan | None:
        """A model call's ``chat`` span or a tool call's ``execute_tool`` span, or None."""
        facts = rec.facts if isinstance(rec, NodeCompleted) else {}
        call = given.get("call")
        kind, tool = await self._node_kind(run.workflow, run.version, rec.node_id)
        ctx = self._context(execution_id, call_span_id(execution_id, rec.node_id, rec.dispatch))
        if call == "tool" or (kind == "tool" and call is None):
            name = str(given.get("tool") or tool)
            extra = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
            if given.get("call_id"):
                extra["gen_ai.tool.call.id"] = str(given["call_id"])
            return self._span(
                f"execute_tool {name}", ctx, parent, attrs | extra, began, rec.at_ms, status
            )
        if call == "model" or kind == "model" or "gen_ai_model" in facts:
            model = str(facts.get("gen_ai_model", ""))
            extra = {"gen_ai.operation.name": "chat"} | _genai(facts)
            return self._span(
                f"chat {model}".rstrip(), ctx, parent, attrs | extra, began, rec.at_ms, status
            )
        return None

    async def _wait(
        self, execution_id: str, rec: WaitCompleted | ApprovalReceived
    ) -> list[ReadableSpan]:
        since = self._waits.pop((execution_id, rec.node_id, rec.dispatch), None)
        if since is None:
            return []
        run = await self._run(execution_id)
        attrs = self._base(execution_id, run) | {"tether.node_id": rec.node_id}
        if isinstance(rec, ApprovalReceived):
            attrs |= {"tether.decision": rec.decision, "tether.user_id": rec.user_id}
        else:
            attrs["tether.wait_by"] = rec.by
        ctx = self._context(execution_id, attempt_span_id(execution_id, rec.node_id, rec.dispatch))
        parent = self._context(execution_id, execution_span_id(execution_id))
        return [self._span(f"wait {rec.node_id}", ctx, parent, attrs, since, rec.at_ms, _ok())]

    async def _execution(self, execution_id: str, rec: Record) -> ReadableSpan:
        run = await self._run(execution_id)
        del self._runs[execution_id]
        for key in [k for k in self._handed if k[0] == execution_id]:
            del self._handed[key]  # closed by the run's end (cancelled, superseded)
        for key in [k for k in self._waits if k[0] == execution_id]:
            del self._waits[key]
        attrs = self._base(execution_id, run)
        status = _ok()
        if isinstance(rec, SegmentBoundary):
            attrs |= {"tether.status": "continued", "tether.continued_as": rec.next_execution_id}
        else:
            state = {
                ExecutionCompleted: "completed", ExecutionFailed: "failed",
                ExecutionCancelled: "cancelled", ExecutionLimited: "limit_exceeded",
            }[type(rec)]  # fmt: skip
            attrs["tether.status"] = state
            if state != "completed":
                status = Status(StatusCode.ERROR, str(getattr(rec, "error", "") or
                                                      getattr(rec, "reason", "")))  # fmt: skip
        root = root_of(execution_id)
        parent = None
        if root != execution_id:  # a segment or a child: inside the run's first execution
            parent = self._context(execution_id, execution_span_id(root))
        ctx = self._context(execution_id, execution_span_id(execution_id))
        name = f"execution {run.workflow}@{run.version}"
        return self._span(name, ctx, parent, attrs, run.started_ms, rec.at_ms, status)

    def _context(self, execution_id: str, span_id: int) -> SpanContext:
        return SpanContext(trace_id(execution_id), span_id, False, _SAMPLED)

    def _span(
        self,
        name: str,
        ctx: SpanContext,
        parent: SpanContext | None,
        attrs: dict[str, Any],
        start_ms: int,
        end_ms: int,
        status: Status,
    ) -> ReadableSpan:
        return ReadableSpan(
            name=name, context=ctx, parent=parent, resource=self._resource, attributes=attrs,
            kind=SpanKind.INTERNAL, status=status, start_time=start_ms * 1_000_000,
            end_time=max(end_ms, start_ms) * 1_000_000, instrumentation_scope=SCOPE,
        )  # fmt: skip


def _ok() -> Status:
    return Status(StatusCode.UNSET)


def _genai(facts: dict[str, Any]) -> dict[str, Any]:
    """The call's facts under OpenTelemetry's GenAI attribute names."""
    names = {
        "gen_ai_system": "gen_ai.system", "gen_ai_model": "gen_ai.request.model",
        "input_tokens": "gen_ai.usage.input_tokens",
        "output_tokens": "gen_ai.usage.output_tokens",
        "finish_reason": "gen_ai.response.finish_reasons", "cost_usd": "tether.cost_usd",
    }  # fmt: skip
    out: dict[str, Any] = {}
    for key, name in names.items():
        value = facts.get(key)
        if isinstance(value, str | int | float | bool):
            out[name] = [value] if name.endswith("finish_reasons") else value
    return out
