"""Turning traces on from the environment, for ``tether dev`` and embedders alike.

Example::

    async with anyio.create_task_group() as tg:
        tracing = await tracing_from_env(rt, tg, os.environ)   # None: no endpoint set
        ...
        if tracing is not None:
            await tracing.aclose()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio.abc

from tether.telemetry.otlp_env import tracing_requested

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

    from tether.runtime.runtime import Runtime
    from tether.telemetry.follower import RuntimeTracing

_log = logging.getLogger("tether.telemetry")


async def tracing_from_env(
    rt: Runtime,
    tg: anyio.abc.TaskGroup,
    env: Mapping[str, str],
    wrap: Callable[[SpanProcessor], SpanProcessor] | None = None,
) -> RuntimeTracing | None:
    """Follow ``rt``'s journal and export its spans over OTLP/HTTP when ``env`` names an
    endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``); None, and nothing installed, otherwise.
    ``wrap`` puts a processor in front of the exporting one (the server's redaction)."""
    if not tracing_requested(env):
        return None
    try:
        from tether.telemetry.follower import start_tracing
        from tether.telemetry.otlp import otlp_processor_from_env
    except ImportError as exc:
        _log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'tether[otel]'): no traces (%s)", exc,
        )  # fmt: skip
        return None
    processor = otlp_processor_from_env(env)
    if processor is None:
        return None
    return await start_tracing(rt, processor if wrap is None else wrap(processor), tg)
