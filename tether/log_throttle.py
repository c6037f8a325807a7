"""A logging filter that lets a line repeated many times through only a few times per
interval, then says how many it dropped.

A flood of connections or bad requests makes a server log the same line thousands of times a
second: the disk fills, the one line that matters scrolls away, and the logging itself
costs the CPU the server needed. Lines are the same when their logger, level, message and
structured fields are (a lifecycle event of ``tether.logs`` carries its ids in its fields,
so two runs' events are two lines); the first ``burst`` in each ``interval_secs`` pass, the
rest are counted, and the first one after the interval carries the count.

Example::

    handler.addFilter(RepeatFilter(burst=10, interval_secs=10.0))
    # ... "Invalid HTTP request received. (1,234 more like this dropped in the last 10 s)"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

#: Past this many distinct lines in one interval, lines are no longer tracked (all pass).
MAX_TRACKED: Final = 4096


class RepeatFilter(logging.Filter):
    """Passes at most ``burst`` identical lines per ``interval_secs`` (see the module)."""

    def __init__(
        self,
        burst: int = 10,
        interval_secs: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.interval_secs = interval_secs
        self._clock = clock
        # line -> [start of its interval, lines seen in it]
        self._seen: dict[tuple[str, int, str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        fields = getattr(record, "fields", None)
        key = (
            record.name,
            record.levelno,
            record.getMessage(),
            "" if fields is None else repr(fields),
        )
        entry = self._seen.get(key)
        if entry is None:
            if len(self._seen) >= MAX_TRACKED:
                self._forget(now)
                if len(self._seen) >= MAX_TRACKED:
                    return True
            self._seen[key] = [now, 1]
            return True
        if now - entry[0] >= self.interval_secs:
            dropped = int(entry[1]) - self.burst
            # A new interval goes to the end, keeping the table in start order (_forget).
            del self._seen[key]
            self._seen[key] = [now, 1]
            if dropped > 0:
                record.msg = (
                    f"{record.getMessage()} ({dropped:,} more like this dropped in the last "
                    f"{self.interval_secs:g} s)"
                )
                record.args = None
            return True
        entry[1] += 1
        return entry[1] <= self.burst

    def _forget(self, now: float) -> None:
        """Drop the oldest lines whose interval has ended (their drop counts are lost with
        them), stopping at the first still running: the table is in interval-start order, so a
        full table of live lines (one line per run, each with its own ids) costs one look
        per new line, not a scan of the table."""
        while self._seen:
            oldest = next(iter(self._seen))
            if now - self._seen[oldest][0] < self.interval_secs:
                return
            del self._seen[oldest]
