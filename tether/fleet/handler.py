"""What the broker reports to the scheduler: the :class:`Peer` record and the handler protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tether.fleet.protocol import ToolAnnouncement, WorkerMessage


@dataclass(slots=True, eq=False)
class Peer:
    """A worker the broker knows: its ROUTER identity, who it is, and what its Hello said.

    ``principal`` is the CURVE public key (z85) its connection authenticated with, or None on a
    worker port without keys. ``joined_at`` and ``last_seen`` are event-loop times (monotonic
    seconds).
    """

    identity: bytes
    worker_id: str
    queues: tuple[str, ...]
    capacity: int
    tools: tuple[str, ...]
    pid: int
    host: str
    joined_at: float
    last_seen: float
    principal: str | None = None
    #: The leases its Hello claimed (work item, fence), or None when the Hello made no claim
    #: (an older worker: every lease held under its id stays its own).
    claims: frozenset[tuple[str, int]] | None = None
    #: The tools its Hello announced (tether.fleet.tool_announcements).
    announced: tuple[ToolAnnouncement, ...] = ()
    #: It reads Batch frames (its Hello said so): the broker coalesces what it sends it.
    batches: bool = False


class BrokerHandler(Protocol):
    """What the scheduler implements. Calls come one at a time, in arrival order.

    An exception from a callback is logged and the broker goes on serving (I10).
    """

    async def on_worker_joined(self, peer: Peer) -> None:
        """A worker said Hello and was welcomed."""
        ...

    async def on_worker_left(self, peer: Peer, reason: str) -> None:
        """A worker is gone: ``"bye: ..."``, ``"replaced"``, ``"silent for N ms"``, ``"its
        connection closed"``, or a send that found it unreachable or not reading. Its leases
        are the scheduler's to reclaim."""
        ...

    async def on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        """Any other message from a known worker (Credit, Heartbeat, Result, RateLimited)."""
        ...
