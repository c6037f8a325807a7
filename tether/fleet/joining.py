"""What the broker makes of a worker's Hello: a refusal when it speaks another protocol, else
the :class:`~tether.fleet.handler.Peer` it keeps for the worker, with the leases it claims.

Between the two, :class:`~tether.fleet.peer_table.PeerTable` decides whether the Hello may join
at all (one worker id per connection, no takeover of a live id, a bounded number of workers
per key). The broker sends the refusal or the Welcome and tells its handler.

It stands apart from :mod:`tether.fleet.broker` because a Hello comes once per connection:
the broker's module keeps to the path every message takes.

Example::

    refusal = protocol_refusal("eng-1", hello)      # None: it speaks PROTOCOL_VERSION
    peer = joined_peer(identity, principal, hello, now=loop.time())
"""

from __future__ import annotations

from tether.fleet.handler import Peer
from tether.fleet.peer_table import Refusal
from tether.fleet.protocol import ERR_PROTOCOL_VERSION, PROTOCOL_VERSION, Hello

__all__ = ["joined_peer", "protocol_refusal"]


def protocol_refusal(engine_id: str, hello: Hello) -> Refusal | None:
    """The refusal for a Hello in another protocol version than this engine's; None if it
    speaks this one."""
    if hello.protocol == PROTOCOL_VERSION:
        return None
    return Refusal(
        ERR_PROTOCOL_VERSION,
        f"engine {engine_id!r} speaks protocol {PROTOCOL_VERSION}; worker "
        f"{hello.worker_id!r} sent Hello with protocol {hello.protocol}",
    )


def joined_peer(identity: bytes, principal: str | None, hello: Hello, now: float) -> Peer:
    """The peer an admitted Hello on connection ``identity`` becomes, seen at ``now``."""
    return Peer(
        identity=identity,
        worker_id=hello.worker_id,
        queues=tuple(hello.queues),
        capacity=hello.capacity,
        tools=tuple(hello.tools),
        pid=hello.pid,
        host=hello.host,
        joined_at=now,
        last_seen=now,
        principal=principal,
        claims=_claims(hello),
        announced=tuple(hello.announced),
        batches=hello.batches,
    )


def _claims(hello: Hello) -> frozenset[tuple[str, int]] | None:
    """The leases a Hello claims; None from a worker that does not claim (no incarnation)."""
    if not hello.incarnation:
        return None
    return frozenset((lease.work_item_id, lease.fence) for lease in hello.leases)
