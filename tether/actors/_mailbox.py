"""The bounded mailbox: a deque plus asyncio futures, one consumer (the actor loop).

Why not an anyio memory object stream: the mailbox hop is on the path of every message the
runtime sends, and the stream costs about five times an ``asyncio.Queue`` hop. Measured with
``python -m benchmarks.actor_hop --n 200000 --repeats 5`` on the 2 vCPU dev VM (CPython 3.11.7,
anyio 4.16; other jobs were running, so expect +-15% between runs)::

    bare asyncio.Queue ping-pong           186k hops/s   1.00x
    bare anyio memory stream ping-pong      35k hops/s   0.19x
    this Mailbox, bare ping-pong           205k hops/s   1.11x
    ActorRef.ask ping-pong, timeout=None   206k hops/s   1.11x
    ActorRef.ask ping-pong, timeout=5.0    155k hops/s   0.83x
    ActorRef.tell throughput               983k msgs/s   5.29x  (no wake-up per message)

An ask with a timeout arms a bare ``loop.call_later`` on the reply future: wrapping each ask in
``anyio.fail_after`` instead measured ~70k hops/s against ~145k in the same run.

So the kernel requires the asyncio backend: the actor loops still run in the ActorSystem's anyio
task group, only the hand-off between tasks uses asyncio futures directly.

Two lanes: the user lane is bounded (``tell`` waits, ``tell_nowait`` raises MailboxFull), the
system lane (stop requests, child failures) is unbounded and read first, so supervision never
waits behind a full mailbox.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ._errors import ActorStopped, MailboxFull

#: A user message and, for an ask, the future that carries the answer back.
Envelope = tuple[object, "asyncio.Future[object] | None"]


class Mailbox:
    """Bounded FIFO of envelopes plus an unbounded system lane; single consumer.

    Example::

        mailbox = Mailbox("worker", capacity=10)
        mailbox.put_nowait(("job", None))
        message, reply = await mailbox.get()
    """

    __slots__ = (
        "_capacity",
        "_closed",
        "_finished",
        "_getter",
        "_name",
        "_putters",
        "_system",
        "_user",
    )

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("mailbox_size must be >= 1")
        self._name = name
        self._capacity = capacity
        self._user: deque[Envelope] = deque()
        self._system: deque[object] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._finished = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._user)

    def _stopped_error(self) -> ActorStopped:
        return ActorStopped(f"actor '{self._name}' is stopped")

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _wake_putter(self) -> None:
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return

    def put_nowait(self, envelope: Envelope) -> None:
        """Append a user envelope or raise ActorStopped / MailboxFull."""
        if self._closed:
            raise self._stopped_error()
        if len(self._user) >= self._capacity:
            raise MailboxFull(f"mailbox of actor '{self._name}' is full ({self._capacity})")
        self._user.append(envelope)
        self._wake_getter()

    async def put(self, envelope: Envelope) -> None:
        """Append a user envelope, waiting while the mailbox is full (backpressure)."""
        while not self._closed and len(self._user) >= self._capacity:
            putter = asyncio.get_running_loop().create_future()
            self._putters.append(putter)
            try:
                await putter
            except BaseException:
                putter.cancel()
                # A wake-up this putter consumed but cannot use goes to the next one in line.
                if not self._closed and len(self._user) < self._capacity:
                    self._wake_putter()
                raise
        self.put_nowait(envelope)

    def put_system(self, message: object) -> bool:
        """Append a control message, ignoring capacity. False once the mailbox is finished."""
        if self._finished:
            return False
        self._system.append(message)
        self._wake_getter()
        return True

    async def get(self) -> object:
        """Next system message if any, else the next user envelope (a tuple); waits if empty."""
        while True:
            if self._system:
                return self._system.popleft()
            if self._user:
                envelope = self._user.popleft()
                if self._putters:
                    self._wake_putter()
                return envelope
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                self._getter = None

    def get_user_nowait(self) -> Envelope | None:
        """Next user envelope, or None if the user lane is empty (used while draining)."""
        if not self._user:
            return None
        envelope = self._user.popleft()
        if self._putters:
            self._wake_putter()
        return envelope

    def close(self) -> None:
        """Refuse new user envelopes; waiting senders get ActorStopped. Queued ones stay."""
        self._closed = True
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)

    def finish(self) -> tuple[list[Envelope], list[object]]:
        """Close for good and hand back everything left, user and system lanes."""
        self.close()
        self._finished = True
        user, system = list(self._user), list(self._system)
        self._user.clear()
        self._system.clear()
        return user, system
