"""ActorCell: one actor's loop, lifecycle and supervision; the ref and context point at it.

Everything that touches the actor instance runs in the cell's own task (``run``), so hooks
never overlap. Other tasks only enqueue: user messages on the bounded lane, stop requests and
child failures on the system lane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._actor import Actor, ActorContext
from ._errors import ActorStopped
from ._mailbox import Envelope, Mailbox
from ._ref import ActorRef
from ._supervision import EscalateStrategy, RestartStrategy, RestartWindow, SupervisionStrategy

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("tether.actors")

#: The cell whose loop runs in the current task (children's tasks overwrite it at start).
_current_cell: ContextVar[ActorCell | None] = ContextVar("tether_actors_cell", default=None)


class _Stop:
    __slots__ = ()


_STOP = _Stop()


@dataclass(frozen=True, slots=True)
class _ChildFailed:
    child: ActorCell
    error: BaseException
    #: The parent's restart_count when sent; a restarted parent ignores its old children.
    incarnation: int


class ActorCell:
    """The kernel's side of one actor (internal; users hold ActorRef)."""

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        factory: Callable[[], Actor],
        mailbox_size: int,
        strategy: SupervisionStrategy,
        parent: ActorCell | None,
    ) -> None:
        self.system = system
        self.name = name
        self.factory = factory
        self.strategy = strategy
        self.parent = parent
        # Insertion-ordered dicts, not lists: stopping one of many children must not scan them.
        self.children: dict[ActorCell, None] = {}
        self.mailbox = Mailbox(name, mailbox_size)
        self.ref = ActorRef(self)
        #: Handed to each instance (the same one across restarts); None once the loop ended.
        self._context: ActorContext | None = ActorContext(self)
        self.instance: Actor | None = None
        self.restart_count = 0
        self.children_closed = False
        # asyncio's own: the kernel is asyncio-only, and anyio.Event looks up the backend
        # on each construction (a share of spawning an actor per run).
        self.stopped = asyncio.Event()
        self._window = RestartWindow(strategy) if isinstance(strategy, RestartStrategy) else None
        self._stopping = False
        self._drain = True
        self._finished = False
        self._task: asyncio.Task[object] | None = None
        self._backoff: anyio.CancelScope | None = None
        self._in_flight: asyncio.Future[object] | None = None
        self._failure: BaseException | None = None
        self._handling = False  # inside on_receive: a supervisor restart may interrupt it
        self._interrupting = False

    # -- requests from other tasks ----------------------------------------------------------

    def request_stop(self, drain: bool, interrupt: bool = False) -> None:
        if self._finished:
            return
        self._drain = self._drain and drain  # a later drain=False cuts a drain short
        if not self._stopping:
            self._stopping = True
            self.mailbox.close()
            self.mailbox.put_system(_STOP)
        if self._backoff is not None:
            # Finish the restart now rather than make the stop wait out the backoff.
            self._backoff.cancel()
        if (
            interrupt
            and self._handling
            and not self._interrupting
            and self._task is not None
            and self._task is not asyncio.current_task()  # last: it costs a look-up
        ):
            # A supervisor restarting or ending a subtree cannot wait for a handler that waits
            # on the supervisor (a child asking its restarting parent would never return).
            self._interrupting = True
            assert self._task is not None
            self._task.cancel()

    async def stop(self, drain: bool, interrupt: bool = False) -> None:
        self.request_stop(drain, interrupt)
        if not self._called_from_subtree():
            await self.stopped.wait()

    def _called_from_subtree(self) -> bool:
        # Waiting for our own loop (or an ancestor's, which waits for ours) would deadlock.
        cell = _current_cell.get()
        if cell is None or cell._task is not asyncio.current_task():
            return False
        while cell is not None:
            if cell is self:
                return True
            cell = cell.parent
        return False

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        self._task = asyncio.current_task()
        _current_cell.set(self)
        try:
            if await self._boot():
                await self._serve()
        finally:
            self._finish()
            self._release()

    def _release(self) -> None:
        """Break the cell's reference cycles once its loop is over (ref, context, instance and
        task all point back at it), so reference counting frees a finished actor at once.
        Otherwise every finished actor lingers until a full collection, and with thousands of
        short-lived execution actors those collections were a large share of a step's cost.
        A ref held elsewhere still answers (its finished mailbox refuses messages, stop returns
        at once); a context held elsewhere still reaches the cell."""
        _current_cell.set(None)  # the task's context holds the cell while the task lives
        self._task = None
        self.instance = None
        self._context = None
        self.ref._release()

    async def _boot(self) -> bool:
        """Build an instance and start it; False if the strategy ended the actor instead."""
        while True:
            instance: Actor | None = None
            try:
                instance = self.factory()
                assert self._context is not None
                instance.context = self._context
                self.instance = instance
                await instance.on_start()
                return True
            except (Exception, asyncio.CancelledError) as raised:
                error = _failure_of(raised, self.name)
                if not await self._fail(error, instance):
                    return False

    async def _serve(self) -> None:
        mailbox = self.mailbox
        while True:
            item = await mailbox.get()
            if item.__class__ is tuple:
                if not await self._handle(item, draining=False):
                    return
            elif item is _STOP:
                break
            elif isinstance(item, _ChildFailed) and not await self._child_failed(item):
                return
        await self._stop_orderly()

    async def _handle(self, envelope: Envelope, *, draining: bool) -> bool:
        """Process one message; False if the actor was ended by its strategy."""
        message, reply = envelope
        instance = self.instance
        assert instance is not None
        self._in_flight = reply
        self._handling = True
        try:
            result = await instance.on_receive(message)
        except (Exception, asyncio.CancelledError) as raised:
            self._handling = False
            if self._interrupted(raised):
                self._in_flight = None
                if reply is not None and not reply.done():
                    reply.set_exception(
                        ActorStopped(f"actor '{self.name}' stopped while handling it")
                    )
                return True  # the stop request waiting in the system lane ends the loop
            error = _failure_of(raised, self.name)
            self._in_flight = None
            if reply is not None:
                if not reply.done():
                    reply.set_exception(error)
                return True
            if draining:
                # Stopping already: no restart; keep the instance to finish the drain.
                await self._hook("on_failure", instance.on_failure, error)
                logger.warning("actor %r failed while stopping", self.name, exc_info=error)
                return True
            return await self._fail(error, instance) and await self._boot()
        self._handling = False
        self._interrupted(None)
        self._in_flight = None
        if reply is not None and not reply.done():
            reply.set_result(result)
        return True

    def _interrupted(self, raised: BaseException | None) -> bool:
        """Whether ``raised`` is our own interruption of the handler (and undo it if so).

        Also called after a handler returned normally: one that swallowed the interruption
        must not leave the task marked as being cancelled.
        """
        if not self._interrupting:
            return False
        self._interrupting = False
        task = asyncio.current_task()
        if task is not None and task.cancelling() > 0:
            task.uncancel()
            if task.cancelling() > 0:  # cancelled from outside as well: that one propagates
                return False
        return raised is None or isinstance(raised, asyncio.CancelledError)

    async def _child_failed(self, note: _ChildFailed) -> bool:
        instance = self.instance
        if instance is None or note.incarnation != self.restart_count:
            logger.warning(
                "actor %r: dropped escalation from %r (sent to an earlier instance)",
                self.name,
                note.child.name,
                exc_info=note.error,
            )
            return True
        try:
            await instance.on_child_failure(note.child.ref, note.error)
        except (Exception, asyncio.CancelledError) as raised:
            error = _failure_of(raised, self.name)
            return await self._fail(error, instance) and await self._boot()
        return True

    # -- supervision ------------------------------------------------------------------------

    async def _fail(self, error: BaseException, instance: Actor | None) -> bool:
        """Apply the strategy to a failure; True means 'boot a fresh instance now'."""
        if instance is not None:
            await self._hook("on_failure", instance.on_failure, error)
        self.instance = None
        strategy = self.strategy
        if self._window is not None:
            delay = self._window.next_backoff(self.system.clock.monotonic())
            if delay is not None:
                logger.warning(
                    "actor %r failed; restart %d in %.3fs",
                    self.name,
                    self.restart_count + 1,
                    delay,
                    exc_info=error,
                )
                await self._restart_after(delay)
                return True
            await self._terminate(error, escalate=True)
        else:
            if not isinstance(strategy, EscalateStrategy):
                logger.error("actor %r failed; stopped by its strategy", self.name, exc_info=error)
            await self._terminate(error, escalate=isinstance(strategy, EscalateStrategy))
        return False

    async def _restart_after(self, delay: float) -> None:
        # Children belong to the failed instance; the fresh one's on_start spawns its own,
        # possibly under the same names, so they must be gone first.
        await self._stop_children(drain=False, interrupt=True)
        with anyio.CancelScope() as scope:
            self._backoff = scope
            if self._stopping:
                scope.cancel()
            await self.system.clock.sleep(delay)
        self._backoff = None
        self.restart_count += 1

    async def _terminate(self, error: BaseException, *, escalate: bool) -> None:
        self._stopping = True
        self._failure = error
        self.mailbox.close()
        await self._stop_children(drain=False, interrupt=True)
        self._finish()
        if not escalate:
            return
        parent = self.parent
        if parent is None:
            await self.system._escalate(self.ref, error)
        elif not parent.mailbox.put_system(_ChildFailed(self, error, parent.restart_count)):
            logger.error(
                "actor %r escalated but its parent %r is gone",
                self.name,
                parent.name,
                exc_info=error,
            )

    # -- stopping ---------------------------------------------------------------------------

    async def _stop_orderly(self) -> None:
        while self._drain:
            envelope = self.mailbox.get_user_nowait()
            if envelope is None:
                break
            await self._handle(envelope, draining=True)
        await self._stop_children(self._drain)
        if self.instance is not None:
            await self._hook("on_stop", self.instance.on_stop)

    async def _stop_children(self, drain: bool, interrupt: bool = False) -> None:
        self.children_closed = True
        try:
            for child in reversed(list(self.children)):
                await child.stop(drain, interrupt)
        finally:
            self.children_closed = self._stopping

    def _finish(self) -> None:
        """Leave for good: answer what is left, free the name, wake whoever waits for us."""
        if self._finished:
            return
        self._finished = True
        self._stopping = True
        self.children_closed = True
        user, system = self.mailbox.finish()
        replies = [reply for _, reply in user if reply is not None]
        if self._in_flight is not None:
            replies.append(self._in_flight)
            self._in_flight = None
        for reply in replies:
            if not reply.done():
                reply.set_exception(self._stopped_error())
        for note in system:
            if isinstance(note, _ChildFailed):
                logger.error(
                    "actor %r stopped before handling the escalation from %r",
                    self.name,
                    note.child.name,
                    exc_info=note.error,
                )
        if self.parent is not None:
            self.parent.children.pop(self, None)
        self.system._unregister(self)
        self.stopped.set()

    def _stopped_error(self) -> ActorStopped:
        if self._failure is None:
            return ActorStopped(f"actor '{self.name}' stopped")
        error = ActorStopped(f"actor '{self.name}' stopped after failure: {self._failure!r}")
        error.__cause__ = self._failure
        return error

    async def _hook(self, what: str, hook: Callable[..., Awaitable[None]], *args: object) -> None:
        # A hook that raises must not take the loop down with it; the failure is only logged.
        try:
            await hook(*args)
        except Exception:
            logger.exception("actor %r: %s raised", self.name, what)


def _failure_of(raised: BaseException, name: str) -> Exception:
    """The failure to supervise for what a hook raised; a real cancellation propagates.

    A handler that awaits a future someone else cancelled raises CancelledError although its
    own task was not cancelled; left alone it would cancel the whole system's task group.
    """
    if isinstance(raised, Exception):
        return raised
    task = asyncio.current_task()
    if task is None or task.cancelling() > 0:
        raise raised
    error = RuntimeError(f"actor {name!r} raised CancelledError without being cancelled")
    error.__cause__ = raised
    return error
