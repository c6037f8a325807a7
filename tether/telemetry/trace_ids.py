"""Trace and span ids derived from what the journal names: no id is stored anywhere.

One trace per run: its id is a hash of the run's first execution id (a continued segment
``X~2.57`` and a child ``X~child1.3`` join ``X``'s trace). An execution's span and a node
attempt's span (execution, node, dispatch) have ids hashed the same way, so the engine's
span follower, a fleet worker given a ``traceparent`` and an engine restarted halfway all
name the same spans without telling each other. Pure hashing: no OpenTelemetry import.

Example::

    traceparent("exec_01", "charge", 2)   # '00-<32 hex>-<16 hex>-01'
"""

from __future__ import annotations

from hashlib import blake2b


def root_of(execution_id: str) -> str:
    """The first execution of the run ``execution_id`` belongs to (before any ``~``)."""
    return execution_id.partition("~")[0]


def _hashed(size: int, *parts: object) -> int:
    digest = blake2b("\x1f".join(map(str, parts)).encode(), digest_size=size).digest()
    return int.from_bytes(digest, "big") or 1  # an all-zero id is invalid in W3C and OTLP


def trace_id(execution_id: str) -> int:
    """The 128-bit trace id of the run ``execution_id`` belongs to."""
    return _hashed(16, "trace", root_of(execution_id))


def execution_span_id(execution_id: str) -> int:
    """The 64-bit id of the span covering one execution (segment) from start to end."""
    return _hashed(8, "execution", execution_id)


def attempt_span_id(execution_id: str, node_id: str, dispatch: int) -> int:
    """The 64-bit id of one hand-out of a node, from its scheduling to its outcome."""
    return _hashed(8, "attempt", execution_id, node_id, dispatch)


def call_span_id(execution_id: str, node_id: str, dispatch: int) -> int:
    """The 64-bit id of the model or tool call a hand-out made (its run time)."""
    return _hashed(8, "call", execution_id, node_id, dispatch)


def traceparent(execution_id: str, node_id: str, dispatch: int) -> str:
    """The W3C ``traceparent`` of a hand-out's attempt span: what a fleet worker's span of
    that step takes as its parent."""
    trace = trace_id(execution_id)
    span = attempt_span_id(execution_id, node_id, dispatch)
    return f"00-{trace:032x}-{span:016x}-01"


class TraceParents:
    """:func:`traceparent` for a stream of hand-outs, hashing each execution's trace id once
    (a run's steps share it): what the fleet puts in every Grant. Remembers the last ``size``
    executions, the oldest forgotten first.

    Example::

        parents = TraceParents()
        parents.of("exec_01", "charge", 2) == traceparent("exec_01", "charge", 2)   # True
    """

    __slots__ = ("_size", "_traces")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._traces: dict[str, str] = {}

    def of(self, execution_id: str, node_id: str, dispatch: int) -> str:
        trace = self._traces.get(execution_id)
        if trace is None:
            trace = f"{trace_id(execution_id):032x}"
            if len(self._traces) >= self._size:
                del self._traces[next(iter(self._traces))]
            self._traces[execution_id] = trace
        span = attempt_span_id(execution_id, node_id, dispatch)
        return f"00-{trace}-{span:016x}-01"


def parse_traceparent(value: str) -> tuple[int, int] | None:
    """``(trace id, span id)`` of a W3C ``traceparent``; None when it does not parse."""
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace, span = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None
    return (trace, span) if trace and span else None
