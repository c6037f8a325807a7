"""Where spans go: OTLP over HTTP, configured as every OpenTelemetry SDK is, by environment.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on;
the exporter reads its headers, timeout and compression from the standard variables too.

Example::

    processor = otlp_processor_from_env(os.environ)   # None when no endpoint is set
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tether.telemetry.otlp_env import ENDPOINT_VARIABLES, tracing_requested

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

__all__ = ["ENDPOINT_VARIABLES", "otlp_processor_from_env", "tracing_requested"]


def otlp_processor_from_env(env: Mapping[str, str]) -> SpanProcessor | None:
    """A batch processor exporting to the configured OTLP/HTTP endpoint, or None."""
    if not tracing_requested(env):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())
