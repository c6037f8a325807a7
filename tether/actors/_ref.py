"""ActorRef: the handle callers hold; it sends, it never touches the actor instance."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio

from ._errors import AskTimeout, MailboxFull

if TYPE_CHECKING:
    from ._cell import ActorCell


def _expire(reply: asyncio.Future[object], name: str, timeout: float) -> None:
    if not reply.done():
        reply.set_exception(AskTimeout(f"actor '{name}' did not answer within {timeout}s"))


class ActorRef:
    """A handle to one actor; it stays the same across restarts.

    Example::

        ref = await system.spawn(Greeter, name="greeter")
        await ref.tell("hi")                       # fire and forget, waits if the mailbox is full
        answer = await ref.ask("who", timeout=1.0) # the handler's return value
        await ref.stop()                           # drains, stops the children, then on_stop
    """

    __slots__ = ("_cell", "_mailbox", "name")

    def __init__(self, cell: ActorCell) -> None:
        self._cell: ActorCell | None = cell
        self._mailbox = cell.mailbox
        self.name = cell.name

    def __repr__(self) -> str:
        return f"<ActorRef {self.name!r} {'alive' if self.is_alive else 'stopped'}>"

    @property
    def is_alive(self) -> bool:
        """True while the actor takes messages (False from the moment a stop begins)."""
        return not self._mailbox.closed

    async def tell(self, message: object) -> None:
        """Send without waiting for the handler; waits while the mailbox is full.

        Raises ActorStopped if the actor is stopped, or stops while this call waits. An actor
        telling itself would wait for itself when its mailbox is full: use tell_nowait there.
        """
        await self._mailbox.put((message, None))

    def tell_nowait(self, message: object) -> None:
        """Send or raise at once: MailboxFull if the mailbox is full, ActorStopped if dead."""
        self._mailbox.put_nowait((message, None))

    async def ask(self, message: object, timeout: float | None = 5.0) -> object:
        """Send and wait for the handler's return value.

        If the handler raises, that same exception is raised here and the actor carries on
        (an ask's failure is the caller's business, not the supervisor's). ActorStopped if the
        actor stops before it answers. AskTimeout (a TimeoutError) after ``timeout`` seconds of
        real event-loop time, not the system's injected clock, so a virtual clock in tests
        never times an ask out by accident; ``timeout=None`` waits for ever. The message is
        still processed if it was delivered before the timeout.
        """
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[object] = loop.create_future()
        envelope = (message, reply)
        if timeout is None:
            await self._mailbox.put(envelope)
            return await reply
        try:
            self._mailbox.put_nowait(envelope)
        except MailboxFull:
            return await self._ask_after_backpressure(envelope, reply, timeout)
        # A bare timer on the reply future costs much less than a cancel scope per ask.
        timer = loop.call_later(timeout, _expire, reply, self.name, timeout)
        try:
            return await reply
        finally:
            timer.cancel()

    async def _ask_after_backpressure(
        self,
        envelope: tuple[object, asyncio.Future[object]],
        reply: asyncio.Future[object],
        timeout: float,
    ) -> object:
        # The timeout also covers the wait for mailbox space, so a cancel scope is needed here.
        with anyio.move_on_after(timeout) as scope:
            await self._mailbox.put(envelope)
            return await reply
        assert scope.cancelled_caught
        raise AskTimeout(f"actor '{self.name}' did not answer within {timeout}s")

    async def stop(self, drain: bool = True) -> None:
        """Stop the actor and its subtree; returns once it has stopped.

        drain=True processes the messages already in the mailbox first; drain=False answers
        every pending ask with ActorStopped instead. New messages are refused at once. Called
        by the actor on itself (or on an ancestor) it only requests the stop, since waiting
        would deadlock its own loop.
        """
        cell = self._cell
        if cell is not None:  # None: stopped for good, and the cell let go of this ref
            await cell.stop(drain)

    def _release(self) -> None:
        """Called by the cell when its loop has ended: drop the ref's half of their cycle."""
        self._cell = None
