"""The Actor base class and the ActorContext each actor instance gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._supervision import SupervisionStrategy
    from ._system import ActorSystem


class Actor:
    """Subclass and override the hooks; the kernel calls them one at a time, never concurrently.

    Example::

        class Counter(Actor):
            def __init__(self) -> None:
                self.total = 0

            async def on_receive(self, message: object) -> object:
                assert isinstance(message, int)
                self.total += message
                return self.total          # the answer to an ask

        async with ActorSystem() as system:
            counter = await system.spawn(Counter, name="counter")
            await counter.tell(2)
            assert await counter.ask(3) == 5

    A failed instance is thrown away: a restart builds a new one from the factory, so state
    lives in the instance only as long as the instance is healthy.
    """

    #: Set by the system before ``on_start``; the same context survives restarts.
    context: ActorContext

    async def on_start(self) -> None:
        """Runs before the first message (and again on each fresh instance after a restart)."""

    async def on_receive(self, message: object) -> object:
        """Handle one message; the return value answers an ask (ignored for a tell)."""
        return None

    async def on_stop(self) -> None:
        """Runs once on an orderly stop, after the children have stopped.

        Not called on the failed instance of a restart, nor when the actor is stopped by its
        strategy after a failure, nor when the system's task group is cancelled.
        """

    async def on_failure(self, error: BaseException) -> None:
        """Runs when a tell handler or ``on_start`` raised, before the strategy acts."""

    async def on_child_failure(self, child: ActorRef, error: BaseException) -> None:
        """A child escalated (restart intensity spent, or EscalateStrategy); it is stopped.

        The default re-raises ``error``, so this actor fails in turn and its own strategy
        applies. Override to handle it here, for example by spawning a replacement.
        """
        raise error


class ActorContext:
    """Where an actor stands: its own ref, its system, its parent and its children.

    Example (inside a handler)::

        worker = await self.context.spawn(Worker, name=f"{self.context.name}/worker")
        await self.context.parent.tell(("ready", self.context.self_ref))
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def self_ref(self) -> ActorRef:
        return self._cell.ref

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def parent(self) -> ActorRef | None:
        parent = self._cell.parent
        return None if parent is None else parent.ref

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def restart_count(self) -> int:
        """How many times this actor has been restarted (0 for the first instance)."""
        return self._cell.restart_count

    @property
    def queued(self) -> int:
        """How many messages wait in this actor's mailbox (an actor that would stop when idle
        checks this: a stop drains them, and a message put later is refused at once)."""
        return len(self._cell.mailbox)

    @property
    def stopping(self) -> bool:
        """Has a stop been requested? (Its mailbox takes no more messages.)"""
        return self._cell.mailbox.closed

    @property
    def children(self) -> list[ActorRef]:
        """The live children, oldest first."""
        return [child.ref for child in self._cell.children if child.ref.is_alive]

    async def spawn(
        self,
        factory: Callable[[], Actor],
        *,
        name: str | None = None,
        mailbox_size: int = 1000,
        strategy: SupervisionStrategy | None = None,
    ) -> ActorRef:
        """Start a child supervised by this actor (stopped before it, restarted on its own)."""
        return await self._cell.system._spawn(
            factory, name=name, mailbox_size=mailbox_size, strategy=strategy, parent=self._cell
        )
