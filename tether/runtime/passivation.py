"""Passivation (I9): an execution that only waits gives up its actor; its state stays on disk.

A turn that leaves its execution running with nothing scheduled or in flight, and only waits
that are a human decision, an external event, or timers at least ``passivate_after_ms`` away,
commits with a snapshot and a :class:`~tether.persistence.contract.Passive` mark on the index
row, in the same transaction (I4). Once its actor has answered the message and nothing else is
in its mailbox, it stops (``may_sleep``). Reads of its state are answered from the store.

What comes next for it (a signal, a cancel, a timer firing) goes through
:class:`Activations`: the actor is spawned again, once however many callers race, and
rebuilds itself as after a restart (``ExecutionActor.on_start``: snapshot, then the records
after it, of which there are none). A message that meets the actor just as it stops is sent
again to the next one: a stopping passivated actor refuses messages, it never drops one it
took. After an engine restart, recovery spawns none of them: it arms each one's earliest timer
(``passive_wakes``) as a wake-up, whose firing activates it like any other.

Example (what the runtime does)::

    ref = await activations.live_ref("exec_1")        # spawns a passivated execution
    answered, state = await activations.ask("exec_1", Approve("approved", "alice"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from tether.actors import ActorRef, ActorStopped, ActorSystem, MailboxFull
from tether.persistence.contract import LoadedExecution, Passive, StoreClosed, Turn
from tether.persistence.ownership import OwnedElsewhere
from tether.runtime.code_first.children import CHILD_KEY
from tether.runtime.services import Services
from tether.runtime.snapshots import encode_state
from tether.runtime.state import ExecutionState
from tether.runtime.timers import ArmTimer

#: The node id of a wake-up armed by recovery for a passivated execution: its actor, spawned
#: by the firing, arms its real timers from its state; this one matches no wait.
WAKE_NODE: Final = ""

#: Lookups of the live actor per message: a message meets a stopping actor at most once per
#: passivation, so more than a few means something keeps failing (it is then refused).
_ATTEMPTS: Final = 8

Spawn = Callable[[str, LoadedExecution | None], Awaitable[ActorRef]]


def passive_mark(state: ExecutionState, now_ms: int, after_ms: int | None) -> Passive | None:
    """The mark for a state that only waits (decisions, events, timers ``after_ms`` or more
    away), with its earliest timer; None when something runs, is due, or passivation is off."""
    if not after_ms or state.status != "running" or not state.waits:
        return None
    if state.running or state.ready or state.continue_pending:
        return None
    wake = None
    for wait in state.waits.values():
        if wait.fired:
            return None  # its turn is still being taken
        if wait.correlation_key is not None and wait.correlation_key.startswith(CHILD_KEY):
            # A code-first child's parent stays live: a restart's recovery then makes sure
            # its child was started and that its end was heard (nothing else would wake it).
            return None
        at = wait.fire_at_ms
        if at is not None:
            if at - now_ms < after_ms:
                return None  # due soon: an actor kept costs less than a round trip to disk
            wake = at if wake is None else min(wake, at)
    return Passive(wake)


def seal(turn: Turn, after: ExecutionState, now_ms: int, after_ms: int | None) -> Turn:
    """``turn``, passivating its execution when the state after it only waits: with the
    snapshot that reactivation starts from (I9), so it replays nothing."""
    mark = passive_mark(after, now_ms, after_ms)
    if mark is None:
        return turn
    snapshot = turn.snapshot if turn.snapshot is not None else encode_state(after)
    return msgspec.structs.replace(turn, snapshot=snapshot, passive=mark)


def may_sleep(state: ExecutionState, queued: int, now_ms: int, after_ms: int | None) -> bool:
    """May an actor whose last turn passivated its execution stop now? Not with messages
    waiting for it, nor when a timer has come near meanwhile (it is woken for it)."""
    return queued == 0 and passive_mark(state, now_ms, after_ms) is not None


class Activations:
    """The live actor of an execution, spawning a passivated one again exactly once."""

    def __init__(
        self,
        services: Services,
        system: ActorSystem,
        live: Callable[[str], ActorRef | None],
        spawn: Spawn,
    ) -> None:
        self._s = services
        self._system = system
        self._live = live
        self._spawn = spawn
        self._pending: dict[str, asyncio.Future[ActorRef | None]] = {}

    async def live_ref(self, execution_id: str) -> ActorRef | None:
        """Its live actor, spawned when the store says it is passivated; None when it has
        none (finished, broken, unknown): the caller says why."""
        ref = self._live(execution_id)
        if ref is not None:
            return ref
        pending = self._pending.get(execution_id)
        if pending is None:
            pending = asyncio.ensure_future(self._activate(execution_id))
            self._pending[execution_id] = pending
            pending.add_done_callback(lambda done: self._settled(execution_id, done))
        return await asyncio.shield(pending)

    def _settled(self, execution_id: str, done: asyncio.Future[ActorRef | None]) -> None:
        self._pending.pop(execution_id, None)
        if not done.cancelled():
            # Retrieved here too: every asker may have been cancelled meanwhile (a shutdown),
            # and asyncio would report the failure as never retrieved.
            done.exception()

    async def _activate(self, execution_id: str) -> ActorRef | None:
        try:
            return await self._load_and_spawn(execution_id)
        except Exception:
            if self._system.running:
                raise
            return None  # the engine shut down meanwhile (its store closed under the read)

    async def _load_and_spawn(self, execution_id: str) -> ActorRef | None:
        # A passivating actor holds its name until its stop is over.
        await self._system.stopped(execution_id)
        if execution_id in self._s.broken:
            return None
        store = self._s.store
        loaded = (await store.load_executions([execution_id])).get(execution_id)
        # Left out of the bulk read (a journal that does not verify): the actor reads it
        # itself, and reports what is wrong.
        row = loaded.row if loaded is not None else await store.get_execution(execution_id)
        ref = self._live(execution_id)
        if ref is not None or row is None or not row.passivated:
            return ref
        return await self._spawn(execution_id, loaded)

    async def ask(self, execution_id: str, message: object) -> tuple[bool, object]:
        """Ask its actor, woken if passivated: ``(True, answer)``, or ``(False, None)`` when
        no actor takes the message (the caller reads why from the store)."""
        for _ in range(_ATTEMPTS):
            ref = await self.live_ref(execution_id)
            if ref is None:
                return False, None
            try:
                return True, await ref.ask(message, timeout=None)
            except ActorStopped:
                continue  # it passivated or ended before taking the message: look again
        return False, None

    async def tell(self, execution_id: str, message: object) -> bool:
        """Tell its actor, woken if passivated; False when none takes the message."""
        for _ in range(_ATTEMPTS):
            ref = await self.live_ref(execution_id)
            if ref is None:
                return False
            try:
                try:
                    ref.tell_nowait(message)
                except MailboxFull:
                    await ref.tell(message)
            except ActorStopped:
                continue
            return True
        return False

    async def wake(self, execution_id: str, message: object) -> None:
        """``tell``, run in a task of its own (a timer firing): an engine that shuts down
        meanwhile drops the message, and its next life arms the timer again (I3)."""
        try:
            await self.tell(execution_id, message)
        except OwnedElsewhere:
            pass  # another engine owns it now and armed its timers again when it took it
        except (RuntimeError, StoreClosed):  # the actor system, or the store, has closed
            if self._system.running:
                raise

    async def arm_wakes(self, wakes: list[tuple[str, int]]) -> None:
        """After a restart: a wake-up at each passivated execution's earliest timer (waiting
        for room in the timer actor's mailbox, not a task per wake-up)."""
        timers = self._s.timers
        assert timers is not None
        for execution_id, at_ms in wakes:
            await timers.tell(ArmTimer(execution_id, WAKE_NODE, 0, at_ms))
