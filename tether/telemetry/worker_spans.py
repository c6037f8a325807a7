"""A fleet worker's span of each step it runs, inside the step's attempt span.

The engine's grant carries the attempt span's W3C ``traceparent``; a worker whose
environment names an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``) runs each granted step
inside a ``run <tool>`` span, a child of that attempt span, exported over OTLP/HTTP from the
worker process. Without an endpoint (or without ``opentelemetry-sdk``) nothing is imported
and :meth:`WorkerSpans.step` is a context manager that does nothing.

Example::

    spans = WorkerSpans.from_env(os.environ, worker_id="w1")
    with spans.step(grant.traceparent, grant.tool, grant.execution_id, grant.node_id,
                    grant.attempt):
        ...
    spans.close()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from tether.telemetry.trace_ids import parse_traceparent


class WorkerSpans:
    """Spans of the steps one worker runs (a provider of its own, never the global one)."""

    def __init__(self, worker_id: str, provider: Any = None) -> None:
        self.worker_id = worker_id
        self._provider = provider
        self._tracer = provider.get_tracer("tether.worker") if provider is not None else None

    @classmethod
    def from_env(cls, env: Mapping[str, str], worker_id: str) -> WorkerSpans:
        """Exporting over OTLP/HTTP when the environment names an endpoint, else a no-op."""
        from tether.telemetry.otlp_env import tracing_requested  # needs no SDK to answer

        if not tracing_requested(env):
            return cls(worker_id)
        try:
            from opentelemetry.sdk.trace import TracerProvider

            from tether.telemetry.follower import resource_from_env
            from tether.telemetry.otlp import otlp_processor_from_env
        except ImportError:  # the extra is not installed: say nothing more than the log
            return cls(worker_id)
        provider = TracerProvider(resource=resource_from_env("tether-worker"))
        processor = otlp_processor_from_env(env)
        if processor is not None:
            provider.add_span_processor(processor)
        return cls(worker_id, provider)

    @classmethod
    def with_provider(cls, worker_id: str, provider: Any) -> WorkerSpans:
        """Spans through ``provider`` (an SDK TracerProvider): for tests and embedding."""
        return cls(worker_id, provider)

    @contextlib.contextmanager
    def step(
        self,
        parent: str | None,
        tool: str,
        execution_id: str,
        node_id: str,
        attempt: int,
    ) -> Iterator[None]:
        """The span of one step run here (nothing without a provider or a parent)."""
        ids = parse_traceparent(parent) if parent else None
        if self._tracer is None or ids is None:
            yield
            return
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        context = trace.set_span_in_context(
            NonRecordingSpan(SpanContext(ids[0], ids[1], True, TraceFlags(TraceFlags.SAMPLED)))
        )
        attrs = {
            "tether.execution_id": execution_id, "tether.node_id": node_id,
            "tether.attempt": attempt, "tether.worker_id": self.worker_id, "tether.tool": tool,
        }  # fmt: skip
        with self._tracer.start_as_current_span(
            f"run {tool}", context=context, attributes=attrs, kind=trace.SpanKind.CONSUMER
        ):
            yield

    def close(self) -> None:
        """Export what is left and stop."""
        if self._provider is not None:
            self._provider.shutdown()
