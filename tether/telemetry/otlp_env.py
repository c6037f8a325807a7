"""Whether traces are asked for, read from the standard OpenTelemetry variables without the
SDK: the engine and workers ask this at every start, with or without the ``tether[otel]``
extra installed, and importing the SDK to answer would cost every start its import time.

Example::

    if tracing_requested(os.environ):
        ...   # only now import tether.telemetry.otlp (the SDK)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Is an OTLP endpoint configured (and traces not turned off by ``OTEL_TRACES_EXPORTER``)?"""
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name) for name in ENDPOINT_VARIABLES)
