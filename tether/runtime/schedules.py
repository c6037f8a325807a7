"""Cron schedules as pure functions: validation, fire times in a time zone, and what a due
schedule starts. The :class:`~tether.runtime.cron.CronActor` does the I/O.

Fire times are computed in the schedule's IANA time zone from the expression's local wall-clock
times (croniter iterates naive wall times; the zone arithmetic is ours, so the rules below do not
depend on croniter's version):

* a wall time that exists once fires at that instant: ``0 9 * * *`` in Europe/Paris fires at
  09:00 local in winter (08:00 UTC) and in summer (07:00 UTC);
* a wall time skipped by a spring-forward fires at the jump, the first instant after the gap:
  ``30 2 * * *`` in Europe/Paris fires at 03:00 CEST on the last Sunday of March, so a daily
  schedule never loses a day. Several skipped wall times fire once there;
* a wall time repeated by a fall-back fires once, at its first pass, unless the expression
  runs every hour (its hour field is ``*``): ``30 2 * * *`` fires at 02:30 CEST only, while
  ``*/15 * * * *`` keeps firing every 15 minutes of real time through both passes.

Example::

    spec = parse_cron("0 9 * * MON-FRI", "Europe/Paris")
    first = spec.next_after(now_ms)                  # epoch milliseconds
    eid = execution_id_for("daily-report", first)    # "sched_daily-report_<first>"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tether.errors import InvalidInput
from tether.persistence.contract import MISSED_POLICIES, ScheduleRow

MissedPolicy = Literal["skip", "run_once"]

#: A fire started at most this late after its time counts as on time (an engine that was
#: busy, not down); later than that it was missed and the schedule's missed policy decides.
DEFAULT_LATE_AFTER_MS: Final = 60_000
#: Prefix of the execution ids schedules start (the rest is the schedule id and the fire time).
EXECUTION_PREFIX: Final = "sched_"
#: Zone offsets are probed this far apart when looking for a DST change between two instants.
_PROBE_SECS: Final = 6 * 3600
#: Bound on the search loops (each step passes a zone transition or a repeated wall time).
_MAX_STEPS: Final = 100_000
_ALIASES: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_EPOCH: Final = datetime(1970, 1, 1)
_SECOND: Final = timedelta(seconds=1)
_encoder = msgspec.msgpack.Encoder(order="deterministic")  # equal inputs, equal bytes


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A checked cron expression in a time zone; computes fire times (epoch milliseconds)."""

    cron: str
    zone: ZoneInfo
    #: The hour field is ``*``: the schedule follows real time through a repeated hour.
    every_hour: bool

    def next_after(self, after_ms: int) -> int:
        """The first fire strictly after ``after_ms``."""
        return self._first_at_or_after(after_ms // 1000 + 1) * 1000

    def last_at_or_before(self, at_ms: int) -> int:
        """The latest fire at or before ``at_ms``."""
        return self._last_at_or_before(at_ms // 1000) * 1000

    # Instants are whole epoch seconds; a wall time is the naive local time as epoch seconds.
    # Inside a stretch of constant UTC offset ``o`` an instant ``t`` shows wall time ``t + o``.

    def _first_at_or_after(self, t: int) -> int:
        before, o = self._offset(t - 1), self._offset(t)
        if o > before and self._match_at_or_after(t + before) < t + o:
            return t  # t is a spring-forward jump, and a wall time in its gap fires here
        for _ in range(_MAX_STEPS):
            o = self._offset(t)
            w = self._match_at_or_after(t + o)
            c = w - o
            change = self._change_after(t, c, o)
            if change is None:
                if self.every_hour or not self._second_pass(c):
                    return c
                t = c + 1  # a fixed-hour wall time seen already, before a fall-back
                continue
            if self._offset(change) > o and w < change + self._offset(change):
                return change  # w was skipped by a spring-forward: it fires at the jump
            t = change
        raise InvalidInput(f"cron: {self.cron!r} found no fire time after {t}")

    def _last_at_or_before(self, t: int) -> int:
        for _ in range(_MAX_STEPS):
            o = self._offset(t)
            w = self._match_at_or_before(t + o)
            c = w - o
            began = self._change_before(c, t, o)
            if began is None:
                if self.every_hour or not self._second_pass(c):
                    return c
                t = c - 1
                continue
            before = self._offset(began - 1)
            if o > before and w >= began + before:
                return began  # w was skipped by the spring-forward at `began`
            t = began - 1
        raise InvalidInput(f"cron: {self.cron!r} found no fire time before {t}")

    def _offset(self, t: int) -> int:
        offset = datetime.fromtimestamp(t, self.zone).utcoffset()
        assert offset is not None
        return offset // _SECOND

    def _second_pass(self, t: int) -> bool:
        """The wall time shown at ``t`` was shown before (the repeated hour of a fall-back)."""
        return datetime.fromtimestamp(t, self.zone).fold == 1

    def _change_after(self, t: int, c: int, o: int) -> int | None:
        """The first instant in ``(t, c]`` whose offset is not ``o``, or None."""
        s = t
        while s < c:
            e = min(s + _PROBE_SECS, c)
            if self._offset(e) != o:
                lo, hi = s, e
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if self._offset(mid) == o else (lo, mid)
                return hi
            s = e
        return None

    def _change_before(self, c: int, t: int, o: int) -> int | None:
        """The instant in ``(c, t]`` where the offset ``o`` of ``t`` began, or None."""
        s = t
        while s > c:
            e = max(s - _PROBE_SECS, c)
            if self._offset(e) != o:
                lo, hi = e, s
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (lo, mid) if self._offset(mid) == o else (mid, hi)
                return hi
            s = e
        return None

    def _match_at_or_after(self, wall: int) -> int:
        found = (
            _croniter_lib().croniter(self.cron, _EPOCH + (wall - 1) * _SECOND).get_next(datetime)
        )
        return int((found - _EPOCH) // _SECOND)

    def _match_at_or_before(self, wall: int) -> int:
        found = (
            _croniter_lib().croniter(self.cron, _EPOCH + (wall + 1) * _SECOND).get_prev(datetime)
        )
        return int((found - _EPOCH) // _SECOND)


def parse_cron(cron: str, timezone: str = "UTC") -> CronSpec:
    """Check a 5-field cron expression (or @hourly, @daily...) and an IANA time zone.

    Raises InvalidInput naming the field.

    Example::

        parse_cron("*/15 * * * *", "UTC").next_after(0)    # 900_000
    """
    zone = parse_timezone(timezone)
    if not isinstance(cron, str):
        raise InvalidInput(f"cron: expected a string, got {type(cron).__name__}")
    text = " ".join(cron.split())
    fields = text.split(" ")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            raise InvalidInput(
                f"cron: {cron!r} is not a valid cron expression: unknown alias "
                f"(expected one of {', '.join(sorted(_ALIASES))})"
            )
    elif len(fields) != 5:
        raise InvalidInput(
            f"cron: {cron!r} is not a valid cron expression: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields) if text else 0}"
        )
    cron_lib = _croniter_lib()
    try:
        expanded = cron_lib.croniter(text, _EPOCH).expanded
        # An expression that never matches (30 February) is refused now, not at its first fire.
        cron_lib.croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except cron_lib.CroniterError as exc:
        raise InvalidInput(f"cron: {cron!r} is not a valid cron expression: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:  # croniter lets a few of these through
        raise InvalidInput(f"cron: {cron!r} is not a valid cron expression: {exc}") from None
    return CronSpec(text, zone, every_hour=expanded[1] == ["*"])


def _croniter_lib() -> Any:
    # Loaded on first use (it and dateutil are a tenth of the runtime's import time): an
    # engine without schedules, such as one restarting to recover its runs, never needs it.
    import croniter  # type: ignore[import-untyped, unused-ignore]

    return croniter


def parse_timezone(timezone: str) -> ZoneInfo:
    """An IANA zone by name; InvalidInput naming the ``timezone`` field otherwise."""
    if not isinstance(timezone, str) or not timezone:
        raise InvalidInput(f"timezone: expected an IANA time zone name, got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(
            f"timezone: {timezone!r} is not a known time zone "
            f"(expected an IANA name such as 'Europe/Paris' or 'UTC'): {exc}"
        ) from None


def check_schedule_id(schedule_id: str) -> None:
    """A schedule id: 1 to 200 printable characters, no whitespace (it goes into ids, URLs
    and log lines)."""
    if not isinstance(schedule_id, str) or not schedule_id:
        raise InvalidInput(f"schedule_id: expected a non-empty string, got {schedule_id!r}")
    if len(schedule_id) > 200:
        raise InvalidInput(f"schedule_id: at most 200 characters, got {len(schedule_id)}")
    if not schedule_id.isprintable() or any(ch.isspace() for ch in schedule_id):
        raise InvalidInput(
            f"schedule_id: {schedule_id!r} may not contain whitespace or control characters"
        )


def check_missed(missed: str) -> MissedPolicy:
    if missed == "skip":
        return "skip"
    if missed == "run_once":
        return "run_once"
    raise InvalidInput(f"missed: expected one of {sorted(MISSED_POLICIES)}, got {missed!r}")


def check_workflow_ref(workflow_id: str, workflow_version: str) -> None:
    for field, value in (("workflow_id", workflow_id), ("workflow_version", workflow_version)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{field}: expected a non-empty string, got {value!r}")


def encode_input(data: dict[str, Any]) -> bytes:
    """The execution input as stored in the schedule row (msgpack, keys in a stable order)."""
    if not isinstance(data, dict):
        raise InvalidInput(f"input: expected a mapping, got {type(data).__name__}")
    try:
        return _encoder.encode(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"input: cannot be stored with the schedule: {exc}") from None


def decode_input(row: ScheduleRow) -> dict[str, Any]:
    """The execution input stored with the schedule; InvalidInput if it does not decode."""
    try:
        data = msgspec.msgpack.decode(row.input)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"schedule {row.schedule_id}: stored input is corrupt: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"schedule {row.schedule_id}: stored input is not a mapping")
    return data


def execution_id_for(schedule_id: str, fire_ms: int) -> str:
    """The one execution id a fire may start: a fire started again is the same execution."""
    return f"{EXECUTION_PREFIX}{schedule_id}_{fire_ms}"


def format_fire(fire_ms: int, zone: ZoneInfo) -> str:
    """A fire time for people: ``2026-03-29T03:00:00+02:00 (Europe/Paris)``."""
    when = datetime.fromtimestamp(fire_ms / 1000, zone).isoformat(timespec="seconds")
    return f"{when} ({zone.key})"


class Due(NamedTuple):
    """What a due schedule does now: start ``fire_ms`` (None: nothing, the fires were missed
    and skipped), then move on to ``next_fire_ms``."""

    fire_ms: int | None
    next_fire_ms: int
    #: The first fire not started because it was missed (None when none was).
    missed_from_ms: int | None


def plan_fire(
    row: ScheduleRow, spec: CronSpec, now_ms: int, late_after_ms: int = DEFAULT_LATE_AFTER_MS
) -> Due:
    """What to do with ``row`` whose next fire is due (``row.next_fire_ms <= now_ms``).

    The latest fire at or before ``now_ms`` is started when it is on time (at most
    ``late_after_ms`` late) or when the policy is ``run_once``; any earlier fire since
    ``row.next_fire_ms`` was missed and starts nothing. The schedule then moves on to the
    first fire after ``now_ms``. Deterministic in its arguments, so a restart that plans the
    same row again starts the same fire, under the same execution id.

    Example::

        due = plan_fire(row, spec, now_ms)
        if due.fire_ms is not None:
            await start(execution_id_for(row.schedule_id, due.fire_ms), ...)
    """
    latest = max(row.next_fire_ms, spec.last_at_or_before(now_ms))
    following = spec.next_after(now_ms)
    on_time = now_ms - latest <= late_after_ms
    fire = latest if on_time or row.missed == "run_once" else None
    missed_from = row.next_fire_ms if fire is None or latest > row.next_fire_ms else None
    return Due(fire, following, missed_from)
