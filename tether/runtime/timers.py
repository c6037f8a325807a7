"""TimerActor: wakes waiting nodes on the injected clock.

Timers are not stored on their own: a waiting node's ``fire_at_ms`` is in its execution's
journal (``node_waiting``), and the execution actor arms its timers from its state after every
commit and again on recovery, so a restart re-arms exactly the timers that have not fired
(I3). A firing is only a message to the execution, which journals ``timer_fired`` before
anything follows from it (I1); a second firing of the same timer finds the wait already over
and changes nothing.

One actor keeps every armed timer in a heap and sleeps until the earliest, so a day of timers
under a :class:`~tether.testing.VirtualClock` runs in milliseconds.

Example (what execution actors do)::

    timers.tell_nowait(ArmTimer("exec_1", "cool_off", dispatch=1, at_ms=1_700_000_000_000))
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import msgspec

from tether.actors import Actor, MailboxFull
from tether.clock import Clock, now_ms


class ArmTimer(msgspec.Struct, frozen=True, gc=False):
    execution_id: str
    node_id: str
    dispatch: int
    at_ms: int


class FireTimer(msgspec.Struct, frozen=True, gc=False):
    """To an execution actor: the timer of ``node_id`` (this dispatch) is due."""

    node_id: str
    dispatch: int


class _Tick(msgspec.Struct, frozen=True, gc=False):
    pass


#: Hands a message to the live actor of an execution; False when there is none.
Tell = Callable[[str, object], Awaitable[bool]]


class TimerActor(Actor):
    """See the module docstring."""

    def __init__(self, clock: Clock, tell: Tell, task_group: anyio.abc.TaskGroup) -> None:
        self._clock = clock
        self._tell = tell
        self._tg = task_group
        self._heap: list[tuple[int, str, str, int]] = []
        self._armed: set[tuple[str, str, int]] = set()
        self._sleeper: anyio.CancelScope | None = None
        self._wake_ms: int | None = None

    async def on_stop(self) -> None:
        if self._sleeper is not None:
            self._sleeper.cancel()

    async def on_receive(self, message: object) -> object:
        if isinstance(message, ArmTimer):
            key = (message.execution_id, message.node_id, message.dispatch)
            if key not in self._armed:  # re-armed on recovery: once is enough
                self._armed.add(key)
                heapq.heappush(self._heap, (message.at_ms, *key))
        elif isinstance(message, _Tick):
            self._sleeper, self._wake_ms = None, None
            await self._fire_due()
        else:
            raise TypeError(f"TimerActor got an unknown message {type(message).__name__}")
        self._arm()
        return None

    async def _fire_due(self) -> None:
        now = now_ms(self._clock)
        while self._heap and self._heap[0][0] <= now:
            _, execution_id, node_id, dispatch = heapq.heappop(self._heap)
            self._armed.discard((execution_id, node_id, dispatch))
            # An execution that is not live (finished, or not yet recovered) re-arms from its
            # journal when it starts: dropping the firing here loses nothing.
            await self._tell(execution_id, FireTimer(node_id, dispatch))

    def _arm(self) -> None:
        if not self._heap:
            return
        wake = self._heap[0][0]
        if self._wake_ms is not None and self._wake_ms <= wake:
            return
        if self._sleeper is not None:
            self._sleeper.cancel()
        scope = anyio.CancelScope()
        self._sleeper, self._wake_ms = scope, wake
        self._tg.start_soon(self._sleep_until, wake, scope)

    async def _sleep_until(self, wake_ms: int, scope: anyio.CancelScope) -> None:
        with scope:
            await self._clock.sleep(max(0.0, wake_ms / 1000 - self._clock.now()))
            ref = self.context.self_ref
            if ref.is_alive:
                try:
                    ref.tell_nowait(_Tick())
                except MailboxFull:
                    await ref.tell(_Tick())
