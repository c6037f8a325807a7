"""The logs' exit: a ``logging`` filter that redacts each line before any handler writes it.

``tether dev`` puts it on the root logger's handlers while the engine runs, so Tether's lines,
its libraries' and uvicorn's all pass it: the message, the structured fields
(``tether.logs``) and an exception's traceback (rendered here, then redacted). A service that
embeds a Runtime adds :class:`RedactingLogFilter` to its own handlers the same way.

Example::

    uninstall = install_log_redaction(engine_redaction)
    ...
    uninstall()
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from tether.governance.redaction.engine import EngineRedaction

_PLAIN = (str, int, float, bool, type(None), dict, list, tuple)


class RedactingLogFilter(logging.Filter):
    """Rewrites a record's text with the engine's current policy; never drops a record."""

    def __init__(self, redaction: EngineRedaction) -> None:
        super().__init__()
        self._redaction = redaction

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redaction.current
        if redactor is None:
            return True
        record.msg = redactor.text(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        fields = dict(fields) if isinstance(fields, dict) else {}
        if record.exc_info:  # the traceback's text holds exception messages: redact it too
            fields["exception"] = "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = None
            record.exc_text = None
        elif record.exc_text:
            fields["exception"] = record.exc_text
            record.exc_text = None
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        if fields or hasattr(record, "fields"):
            record.fields = redactor.value(_plain(fields))
        return True


def _plain(value: Any) -> Any:
    """Values a renderer would show by their repr (an exception, a path) as text first."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, _PLAIN) else str(value)


def install_log_redaction(redaction: EngineRedaction) -> Callable[[], None]:
    """Put a :class:`RedactingLogFilter` on each of the root logger's handlers; returns
    what takes them off again."""
    log_filter = RedactingLogFilter(redaction)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(log_filter)

    def uninstall() -> None:
        for handler in handlers:
            handler.removeFilter(log_filter)

    return uninstall
