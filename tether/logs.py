"""Structured logs: one line per lifecycle event, with the ids that find it again.

Tether's modules log lifecycle events (an execution started or resumed, a node failed, a
lease reclaimed, a worker joined or was lost) as an event name and key-value fields through
:func:`lifecycle_logger`. The line goes through the standard ``logging`` module, so a service
that embeds a Runtime keeps its own logging setup and finds the fields as the record's
attributes; ``tether dev`` and ``tether worker`` call :func:`configure_logging`, which
renders every line, Tether's and its libraries', through structlog: JSON when stderr is not a
terminal (for collectors), aligned key=value on one; a line repeated many times a second is
let through a few times with a count of the rest (:mod:`tether.log_throttle`).

Example::

    log = lifecycle_logger("tether.runtime")
    log.event("node_failed", execution_id=eid, node_id="fetch", attempt=2, error="boom")
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from tether.log_throttle import RepeatFilter


class LifecycleLogger:
    """Emits one structured INFO line per event (or WARNING with ``level``); a disabled
    level costs one cached check, which matters on the paths each run takes."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def event(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        if self._logger.isEnabledFor(level):
            # The fields ride as the record's attributes; configure_logging renders them.
            self._logger.log(level, event, extra={"fields": fields}, stacklevel=2)


def lifecycle_logger(name: str) -> LifecycleLogger:
    return LifecycleLogger(name)


def _add_fields(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    record = event_dict.get("_record")
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        event_dict.update(fields)
    return event_dict


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Render every log line on stderr through structlog (JSON when stderr is not a
    terminal, unless ``json`` says otherwise). For the ``tether`` commands; an embedding
    service configures logging its own way."""
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatFilter())  # a flood of one line is a few lines and a count
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
