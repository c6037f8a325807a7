"""The traces' exit: a span processor that hands on each span with its text redacted.

Wraps the processor that exports (OTLP): a span's name, string attributes and status
message go out redacted; ids, times and numbers as they are.

Example::

    processor = RedactingSpanProcessor(BatchSpanProcessor(OTLPSpanExporter()), redaction)
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status

from tether.governance.redaction.engine import EngineRedaction


class RedactingSpanProcessor(SpanProcessor):
    """``inner`` receives every span redacted with the engine's current policy."""

    def __init__(self, inner: SpanProcessor, redaction: EngineRedaction) -> None:
        self._inner = inner
        self._redaction = redaction

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        redactor = self._redaction.current
        if redactor is None:
            self._inner.on_end(span)
            return
        attrs: dict[str, Any] = {
            redactor.text(k): redactor.value(v) if isinstance(v, str | tuple | list) else v
            for k, v in (span.attributes or {}).items()
        }
        status = span.status
        if status.description:
            status = Status(status.status_code, redactor.text(status.description))
        self._inner.on_end(
            ReadableSpan(
                name=redactor.text(span.name), context=span.context, parent=span.parent,
                resource=span.resource, attributes=attrs, events=span.events, links=span.links,
                kind=span.kind, status=status, start_time=span.start_time,
                end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
            )
        )  # fmt: skip

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
