"""RepeatFilter: a line repeated many times passes a few times per interval, then once with
the count of those it dropped; different lines do not hold each other back."""

from __future__ import annotations

import logging

from tether.log_throttle import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, name: str = "uvicorn.error") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)


def test_repeats_past_the_burst_are_dropped_then_counted() -> None:
    clock = Clock()
    f = RepeatFilter(burst=3, interval_secs=10.0, clock=clock)
    passed = [f.filter(record("Invalid HTTP request received.")) for _ in range(1000)]
    assert passed == [True] * 3 + [False] * 997
    assert f.filter(record("another line"))  # its own budget
    assert f.filter(record("closed %s", "a")) and f.filter(record("closed %s", "b"))
    clock.now = 10.0
    line = record("Invalid HTTP request received.")
    assert f.filter(line)
    assert line.getMessage() == (
        "Invalid HTTP request received. (997 more like this dropped in the last 10 s)"
    )
    assert [f.filter(record("Invalid HTTP request received.")) for _ in range(3)] == [
        True, True, False,
    ]  # fmt: skip
    clock.now = 20.0
    quiet = record("Invalid HTTP request received.")
    assert f.filter(quiet) and "dropped" in quiet.getMessage()  # the 1 dropped above


def test_the_same_message_from_another_logger_or_level_is_another_line() -> None:
    f = RepeatFilter(burst=1, interval_secs=10.0, clock=Clock())
    assert f.filter(record("x", name="a")) and f.filter(record("x", name="b"))
    assert not f.filter(record("x", name="a"))


def test_lifecycle_events_differing_in_their_fields_are_different_lines() -> None:
    f = RepeatFilter(burst=1, interval_secs=10.0, clock=Clock())
    for n in range(100):
        started = record("execution_started", name="tether.execution")
        started.fields = {"execution_id": f"exec_{n}"}
        assert f.filter(started)


def test_a_line_repeated_across_intervals_does_not_stop_eviction_behind_it() -> None:
    """Found by review: a line whose interval restarted kept its place at the head of a full
    table, eviction stopped at it, and every new line then went through untracked."""
    from tether.log_throttle import MAX_TRACKED

    clock = Clock()
    throttle = RepeatFilter(burst=2, interval_secs=10, clock=clock)
    throttle.filter(record("steady"))
    for i in range(MAX_TRACKED - 1):
        throttle.filter(record(f"once {i}"))
    clock.now = 11.0
    throttle.filter(record("steady"))  # its interval restarts: it is now the newest
    clock.now = 15.0  # the one-off lines' intervals have ended, steady's has not
    flood = [throttle.filter(record("new flood")) for _ in range(1000)]
    assert flood.count(True) == 2
