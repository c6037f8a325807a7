"""OpenTelemetry traces of Tether runs (the ``tether[otel]`` extra).

The engine makes spans from its journal's committed records (:mod:`.follower`,
:mod:`.journal_spans`); a fleet worker makes a span of each step it runs, inside the step's
attempt span named by the grant's ``traceparent`` (:mod:`.worker_spans`). Ids are derived
from execution, node and dispatch (:mod:`.trace_ids`, which needs no OpenTelemetry), so both
sides agree without sharing anything. Only :mod:`.trace_ids` is imported here: the rest
needs ``opentelemetry-sdk``.

Example::

    from tether.telemetry.follower import start_tracing
    tracing = await start_tracing(rt, BatchSpanProcessor(OTLPSpanExporter()), tg)
"""

from tether.telemetry.trace_ids import traceparent

__all__ = ["traceparent"]
