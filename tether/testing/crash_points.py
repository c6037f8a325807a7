"""Run a test body once uncut, then once per journal position with a crash there.

The uncut run counts the records the body makes commit (``n``); then for each position
``k`` in ``0..n-1`` the body runs again on a fresh database whose runtime dies as the
``k+1``-th record would commit, and recovers. The body's own assertions and the plugin's
(:mod:`tether.testing.crash_checks`) must hold at every position. Positions run in order,
all of them: the report names the smallest failing one (the shortest journal that fails,
what shrinking would find), with the records around it, and lists the others.

Example::

    async def body() -> None:
        run = await rt.start(payment, {"amount": 50})
        assert (await run.result())["charged"]

    report = await run_crash_points(body, rt)       # raises CrashPointFailure on a failure
    print(report.positions, report.crashed)
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from tether.testing.crash_checks import records_around, runtime_problems
from tether.testing.runtime_under_test import RuntimeUnderTest


class CrashPointFailure(AssertionError):
    """The test failed with a crash at some journal position (the smallest is reported)."""


@dataclass
class PositionResult:
    """How one position went: ``problems`` empty when everything held."""

    position: int
    crashed: bool
    problems: list[str] = field(default_factory=list)
    in_flight_at_crash: list[str] = field(default_factory=list)
    around: str = ""


@dataclass
class CrashPointsReport:
    """Every position's result; ``positions`` is the uncut run's record count."""

    positions: int
    results: list[PositionResult] = field(default_factory=list)

    @property
    def crashed(self) -> int:
        """Positions where the cut was reached (a body that varies between runs may not)."""
        return sum(1 for r in self.results if r.crashed)

    @property
    def failures(self) -> list[PositionResult]:
        return [r for r in self.results if r.problems]


async def run_crash_points(
    body: Callable[[], Awaitable[None]],
    rt: RuntimeUnderTest,
    *,
    position_timeout: float = 30.0,
) -> CrashPointsReport:
    """Run ``body`` uncut and then once per position; raise :class:`CrashPointFailure`
    naming the smallest failing position, else return the report."""
    await rt.begin()
    uncut = await _run_once(body, rt, position_timeout, position=-1)
    if uncut.problems:
        raise CrashPointFailure("the test fails without any crash:\n" + _said(uncut))
    report = CrashPointsReport(positions=rt.records_written)
    for position in range(report.positions):
        await rt.begin(cut=position)
        report.results.append(await _run_once(body, rt, position_timeout, position))
    await rt.end()
    if report.failures:
        raise CrashPointFailure(_failure_text(report))
    return report


async def _run_once(
    body: Callable[[], Awaitable[None]], rt: RuntimeUnderTest, timeout: float, position: int
) -> PositionResult:
    result = PositionResult(position=position, crashed=False)
    try:
        with anyio.fail_after(timeout):
            await body()
    except Exception as exc:  # the body's own assertion, or its call failing
        lines = traceback.format_exception_only(type(exc), exc)
        result.problems.append("the test body: " + "".join(lines).strip())
    if not result.problems:  # a failed body leaves a run half way: its checks say little
        result.problems += await runtime_problems(rt)
    if rt.crash is not None:
        result.crashed = True
        result.in_flight_at_crash = rt.crash.in_flight_at_crash
    if result.problems and position >= 0:
        result.around = records_around(rt.committed, position)
    return result


def _said(result: PositionResult) -> str:
    return "\n".join(f"  - {p}" for p in result.problems)


def _failure_text(report: CrashPointsReport) -> str:
    failures = report.failures
    first = failures[0]
    others = ", ".join(str(r.position) for r in failures[1:]) or "none"
    return (
        f"crash at journal position {first.position} of {report.positions}: "
        f"{len(failures)} position(s) failed (smallest shown; others: {others})\n"
        f"{_said(first)}\n"
        f"in flight at the crash: {', '.join(first.in_flight_at_crash) or 'nothing'}\n"
        f"records around the crash:\n{first.around}"
    )
