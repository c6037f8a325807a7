"""Traces of a running runtime: a follower of what its journal writer committed.

:func:`start_tracing` puts a thin front on the runtime's store: each journal turn, once the
writer acknowledged it durable, is queued (the turn itself: no copy, no decode) and a
background task decodes its records and makes spans from them (:mod:`.journal_spans`),
handing them to an OpenTelemetry span processor (by default a batch processor exporting over
OTLP/HTTP). Nothing runs inside the execution actor but that queue append, and a runtime
without tracing has no front at all: tracing off costs the step's path nothing.

Example::

    tracing = await start_tracing(rt, BatchSpanProcessor(OTLPSpanExporter()))
    ...
    await tracing.aclose()        # the spans still queued are exported, the store restored
"""

from __future__ import annotations

import collections
import logging
import os
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor

from tether.ir.types import AgentKind, McpToolKind, ModelKind, PythonFnKind, ToolKind
from tether.persistence.contract import Store, Turn
from tether.runtime.internals import runtime_internals
from tether.runtime.records import decode_record
from tether.telemetry.journal_spans import JournalSpans

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime

_log = logging.getLogger("tether.telemetry")


class _FollowedStore:
    """The runtime's store with every committed journal turn also queued for the follower."""

    def __init__(self, inner: Store, committed: collections.deque[Turn], wake: anyio.Event) -> None:
        self._inner = inner
        self._committed = committed
        self.wake = wake

    async def append(self, turn: Turn) -> int:
        last = await self._inner.append(turn)
        if turn.records:  # committed: the follower may read it
            self._committed.append(turn)
            self.wake.set()
        return last

    def __getattr__(self, name: str) -> Any:  # everything else is the store's own
        return getattr(self._inner, name)


class RuntimeTracing:
    """One runtime's span follower (see the module docstring)."""

    def __init__(self, rt: Runtime, processor: SpanProcessor, resource: Resource) -> None:
        self._services = runtime_internals(rt).services
        self._processor = processor
        self._committed: collections.deque[Turn] = collections.deque()
        self._inner = self._services.store
        self._front = _FollowedStore(self._inner, self._committed, anyio.Event())
        self._spans = JournalSpans(resource, self._workflow_of, self._node_kind)
        self._done = anyio.Event()
        self._closing = False
        #: Spans handed to the processor so far.
        self.exported = 0

    async def _workflow_of(self, execution_id: str) -> tuple[str, str, int]:
        row = await self._inner.get_execution(execution_id)
        if row is None:
            return "", "", 0
        return row.workflow_id, row.workflow_version, row.created_at_ms

    async def _node_kind(self, workflow: str, version: str, node_id: str) -> tuple[str, str]:
        try:
            graph = await self._services.graph(workflow, version)
            kind = graph.node(node_id).kind
        except Exception:  # a workflow or node this engine cannot load: a plain node span
            return "other", ""
        if isinstance(kind, ToolKind):
            return "tool", kind.tool_ref
        if isinstance(kind, PythonFnKind):
            return "tool", kind.function
        if isinstance(kind, McpToolKind):
            return "tool", f"{kind.server}.{kind.tool}"
        if isinstance(kind, ModelKind):
            return "model", ""
        return ("agent" if isinstance(kind, AgentKind) else "other"), ""

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._services.store = cast(Store, self._front)
        tg.start_soon(self._follow)

    async def _follow(self) -> None:
        try:
            while True:
                while self._committed:
                    await self._export(self._committed.popleft())
                if self._closing:
                    return
                self._front.wake = anyio.Event()
                if not self._committed and not self._closing:
                    await self._front.wake.wait()
        finally:
            self._done.set()

    async def _export(self, turn: Turn) -> None:
        try:
            records = [decode_record(row.type, row.payload) for row in turn.records]
            for span in await self._spans.turn(turn.execution_id, records):
                self._processor.on_end(span)
                self.exported += 1
        except Exception:  # a span is not worth a run: say so and go on
            _log.exception("tracing: no spans for a turn of %s", turn.execution_id)

    async def aclose(self) -> None:
        """Stop following (the store is the runtime's own again), export what is queued,
        and flush and shut down the processor."""
        if self._services.store is self._front:
            self._services.store = self._inner
        self._closing = True
        self._front.wake.set()
        await self._done.wait()
        await anyio.to_thread.run_sync(self._processor.shutdown)


def resource_from_env(default_name: str = "tether-engine") -> Resource:
    """The OpenTelemetry resource: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
    as the SDK reads them, the service named ``default_name`` when they do not say."""
    resource = Resource.create()
    if "OTEL_SERVICE_NAME" not in os.environ and SERVICE_NAME not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        resource = resource.merge(Resource({SERVICE_NAME: default_name}))
    return resource


async def start_tracing(
    rt: Runtime,
    processor: SpanProcessor,
    tg: anyio.abc.TaskGroup,
    resource: Resource | None = None,
) -> RuntimeTracing:
    """Follow the open runtime ``rt``'s journal in ``tg`` and send its spans to
    ``processor`` from now on. Close it with :meth:`RuntimeTracing.aclose` before the
    runtime closes.

    Example::

        async with anyio.create_task_group() as tg:
            tracing = await start_tracing(rt, SimpleSpanProcessor(InMemorySpanExporter()), tg)
    """
    tracing = RuntimeTracing(rt, processor, resource or resource_from_env())
    tracing.start(tg)
    return tracing
