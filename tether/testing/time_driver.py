"""Move a :class:`VirtualClock` on when a run has nothing to do but wait for time.

After every commit the driver reads the run's live state. When every hand-out in flight is
held back to a later time (a retry's backoff, a 429's Retry-After) or the run waits only on
timers, nothing but time can move it: the driver waits until the runtime has armed a timer
that early (``VirtualClock.sleeping_until``) and advances the clock to it. A run waiting on
a person or an event, or with work running, is left alone. So backoffs of minutes run in no
time, decided by what the journal says, not by guessing when the system is idle.

Example::

    async with anyio.create_task_group() as tg:
        tg.start_soon(drive_time, rt, clock, run.id)
        state = await rt.wait(run.id)
        tg.cancel_scope.cancel()
"""

from __future__ import annotations

import anyio

from tether.runtime.state import ExecutionState
from tether.testing.clock import VirtualClock
from tether.testing.runtime_under_test import RuntimeUnderTest

#: Timers are armed in milliseconds: a deadline this close counts as the one awaited.
_SLACK_SECS = 0.002


async def drive_time(rt: RuntimeUnderTest, clock: VirtualClock, execution_id: str) -> None:
    """Advance ``clock`` whenever ``execution_id`` only waits for time; returns at its end."""
    while True:
        life = rt.lives[-1]
        appended = life.store.appended  # taken before the read: no commit slips between
        state = await rt.live_state(execution_id)
        if state is not None and state.is_terminal:
            return
        due = next_due_ms(state) if state is not None else None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_then_cancel, appended, tg.cancel_scope)
            tg.start_soon(_then_cancel, life.ended, tg.cancel_scope)
            if due is not None:
                tg.start_soon(_advance_to, clock, due, tg.cancel_scope)
        if life.ended.is_set():
            if not life.crashed:
                return  # the test closed the runtime
            await rt.wait_for_next_life(life)


def next_due_ms(state: ExecutionState) -> int | None:
    """When the run can next move, if only time can move it: the earliest time a held-back
    hand-out or a timer is due; None while anything runs or waits on someone."""
    times: list[int] = []
    for run in state.nodes.values():
        if run.status not in ("scheduled", "retrying"):
            continue
        if run.not_before_ms is None:
            return None  # running now: its outcome will come without the clock
        times.append(run.not_before_ms)
    for wait in state.waits.values():
        if wait.fire_at_ms is None or wait.fired:
            return None  # a person or an event moves it, not time
        times.append(wait.fire_at_ms)
    return min(times) if times else None


async def _advance_to(clock: VirtualClock, due_ms: int, done: anyio.CancelScope) -> None:
    delta = max(0.0, due_ms / 1000 - clock.now())
    target = clock.monotonic() + delta
    await clock.sleeping_until(target + _SLACK_SECS)
    clock.advance(max(0.0, target - clock.monotonic()))
    done.cancel()


async def _then_cancel(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def finish(rt: RuntimeUnderTest, execution_id: str, clock: VirtualClock) -> ExecutionState:
    """Wait for the run's end, moving ``clock`` on whenever only time can move the run (its
    waits, backoffs, Retry-After): a day of timers in no time, crash or not.

    Example::

        run = await tether_runtime.start(payment, {"amount": 50})
        state = await finish(tether_runtime, run.id, virtual_clock)
    """
    async with anyio.create_task_group() as tg:
        tg.start_soon(drive_time, rt, clock, execution_id)
        state = await rt.wait(execution_id)
        tg.cancel_scope.cancel()
    return state
