"""ActorSystem: owns the task group every actor loop runs in, the names, and the top level."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio

from ..clock import Clock, SystemClock
from ._actor import Actor
from ._cell import ActorCell
from ._errors import ActorStopped
from ._ref import ActorRef
from ._supervision import EscalateStrategy, RestartStrategy, StopStrategy, SupervisionStrategy

logger = logging.getLogger("tether.actors")

EscalationHandler = Callable[[ActorRef, BaseException], Awaitable[None]]


class ActorSystem:
    """A tree of supervised actors, each loop a task the system owns (asyncio backend only).

    Example::

        async def give_up(ref: ActorRef, error: BaseException) -> None:
            log.error("%s is beyond repair: %r", ref.name, error)

        async with ActorSystem(on_escalation=give_up) as system:
            ref = await system.spawn(Worker, name="worker")
            print(await ref.ask("ping"))
        # leaving the block stopped every actor, children first, newest top-level actor first

    ``clock`` drives restart backoff and restart windows (inject a fake one in tests).
    ``on_escalation`` is awaited when a top-level actor escalates; it is stopped by then, and
    the other actors carry on. The default logs the error. If it raises, that is logged too.
    Leaving the block normally is an orderly :meth:`shutdown`; leaving it with an exception
    (or being cancelled) cancels the actors instead, without ``on_stop``.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        on_escalation: EscalationHandler | None = None,
        name: str = "tether",
    ) -> None:
        self.name = name
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._on_escalation = on_escalation
        self._cells: dict[str, ActorCell] = {}
        self._top: dict[ActorCell, None] = {}  # ordered; removal must not scan
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The actor loops' tasks (a loop ends its actor's subtree before it returns).
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = False
        self._shutdown_started = False
        self._shutdown_done = anyio.Event()
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name!r} actors={len(self._cells)}>"

    async def __aenter__(self) -> ActorSystem:
        if self._loop is not None:
            raise RuntimeError(f"actor system {self.name!r} can be entered only once")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("tether.actors runs on anyio's asyncio backend only") from None
        self._accepting = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._loop is not None, "__aexit__ without __aenter__"
        if exc_type is None:
            try:
                await self.shutdown()
            except BaseException:
                self._accepting = False
                await self._join(cancel=True)
                raise
        else:
            self._accepting = False
        await self._join(cancel=exc_type is not None)
        return None

    async def _join(self, *, cancel: bool) -> None:
        """Wait until every actor loop has ended, cancelling them first if ``cancel`` (or if
        the wait itself is cancelled: no loop outlives the system, as in a task group)."""
        if not cancel:
            try:
                while self._tasks:
                    await asyncio.wait(list(self._tasks))
                return
            except BaseException:
                await self._join(cancel=True)
                raise
        with anyio.CancelScope(shield=True):  # the loops are cancelled; wait for their ends
            while self._tasks:
                pending = list(self._tasks)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # loops catch their own
            logger.error("actor loop %s raised", task.get_name(), exc_info=task.exception())

    async def spawn(
        self,
        factory: Callable[[], Actor],
        *,
        name: str | None = None,
        mailbox_size: int = 1000,
        strategy: SupervisionStrategy | None = None,
    ) -> ActorRef:
        """Start a top-level actor; ``factory`` builds each instance (again on each restart).

        Example::

            ref = await system.spawn(lambda: Fetcher(url), name="fetcher", mailbox_size=64)
        """
        return await self._spawn(
            factory, name=name, mailbox_size=mailbox_size, strategy=strategy, parent=None
        )

    @property
    def running(self) -> bool:
        """True while the system spawns top-level actors (False once a shutdown began)."""
        return self._accepting

    def get(self, name: str) -> ActorRef | None:
        """The live actor called ``name``, or None."""
        cell = self._cells.get(name)
        if cell is None or not cell.ref.is_alive:
            return None
        return cell.ref

    async def stopped(self, name: str) -> None:
        """Return once no stopping actor holds ``name`` (a stop frees a name only when it is
        over): then it can be spawned again. Returns at once for a live actor or none.

        Example::

            await system.stopped("exec_1")
            ref = await system.spawn(factory, name="exec_1")
        """
        cell = self._cells.get(name)
        if cell is not None and not cell.ref.is_alive:
            await cell.stopped.wait()

    async def shutdown(self) -> None:
        """Stop every top-level actor, newest first, each with its subtree (children first).

        Each actor drains its mailbox first. Returns when all of them have stopped.
        """
        self._accepting = False
        if self._shutdown_started:
            await self._shutdown_done.wait()
            return
        self._shutdown_started = True
        try:
            # A snapshot, not "while self._top": called from inside an actor, stop() of that
            # actor (or its ancestor) only requests and returns, and the loop would spin.
            for cell in reversed(list(self._top)):
                await cell.stop(drain=True)
        finally:
            self._shutdown_done.set()

    # -- used by cells and contexts -----------------------------------------------------------

    async def _spawn(
        self,
        factory: Callable[[], Actor],
        *,
        name: str | None,
        mailbox_size: int,
        strategy: SupervisionStrategy | None,
        parent: ActorCell | None,
    ) -> ActorRef:
        loop = self._loop
        if loop is None or (parent is None and not self._accepting):
            raise RuntimeError(f"actor system {self.name!r} is not running")
        if parent is not None and parent.children_closed:
            raise ActorStopped(f"actor '{parent.name}' is stopping; it cannot spawn children")
        if strategy is None:
            strategy = RestartStrategy()
        elif not isinstance(strategy, RestartStrategy | StopStrategy | EscalateStrategy):
            raise TypeError(f"not a supervision strategy: {strategy!r}")
        if name is None:
            base = factory.__name__ if isinstance(factory, type) else "actor"
            name = f"{base}-{next(self._serial)}"
            while name in self._cells:
                name = f"{base}-{next(self._serial)}"
        elif name in self._cells:
            raise ValueError(f"an actor named {name!r} already exists in {self.name!r}")
        cell = ActorCell(self, name, factory, mailbox_size, strategy, parent)
        self._cells[name] = cell
        (self._top if parent is None else parent.children)[cell] = None
        # A plain task, not a task group's: anyio's start_soon builds a cancel scope and an
        # event per task, a share of starting an actor per run; _join gives the same ending.
        task = loop.create_task(cell.run(), name=f"tether actor {name}")
        self._tasks.add(task)
        task.add_done_callback(self._loop_ended)
        return cell.ref

    def _unregister(self, cell: ActorCell) -> None:
        if self._cells.get(cell.name) is cell:
            del self._cells[cell.name]
        if cell.parent is None:
            self._top.pop(cell, None)

    async def _escalate(self, ref: ActorRef, error: BaseException) -> None:
        handler = self._on_escalation
        if handler is None:
            logger.error("top-level actor %r escalated and is stopped", ref.name, exc_info=error)
            return
        try:
            await handler(ref, error)
        except Exception:
            logger.exception("on_escalation raised for actor %r", ref.name)
