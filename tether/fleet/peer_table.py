"""Who is connected to the broker, and whether a Hello may join: one worker id per connection,
a worker id held by one principal, a bounded number of workers per principal (I14).

A *principal* is what the worker port verified about a connection: the CURVE public key (z85)
its messages carry as ``User-Id``, or ``None`` on a port without keys (loopback only).

The rules for ``Hello(worker_id=W)`` arriving on connection ``C`` from principal ``P``:

* ``C`` is already another worker: refused. Otherwise one socket could register any number of
  ids, and an id it stopped using would stay a phantom that takes grants and never runs them.
* ``W`` is live on another connection: a reconnect of the same worker replaces it (its leases
  stay its own) when ``P`` is a key and the same key holds ``W``, or, without keys, when the old
  connection is gone (ZeroMQ no longer reaches it). Anything else is a takeover: refused. The
  id frees when the old connection is forgotten (Bye, or silent for ``Broker``'s
  ``silence_ms``).
* ``P`` already holds ``max_per_principal`` workers: refused (a flood cannot grow the table).

Example::

    table = PeerTable(max_per_principal=256)
    verdict = table.admit(identity, principal, hello, reachable)
    if isinstance(verdict, Refusal): ...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tether.fleet.handler import Peer
from tether.fleet.protocol import ERR_WORKER_ID, ERR_WORKER_LIMIT, Hello, reserved_worker_id

__all__ = ["Admission", "PeerTable", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """The Hello may not join: the ProtocolError to answer it with."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Admission:
    """The Hello may join; these peers (the same worker, reconnected) leave as ``replaced``."""

    replaced: tuple[Peer, ...]


class PeerTable:
    """The broker's peers by ROUTER identity and by worker id, counted per principal."""

    def __init__(self, *, max_per_principal: int) -> None:
        if max_per_principal < 1:
            raise ValueError("max_per_principal must be >= 1")
        self.max_per_principal = max_per_principal
        self.by_identity: dict[bytes, Peer] = {}
        self._by_worker: dict[str, bytes] = {}
        self._held: Counter[str | None] = Counter()

    def peer_for(self, worker_id: str) -> Peer | None:
        identity = self._by_worker.get(worker_id)
        return None if identity is None else self.by_identity.get(identity)

    def admit(
        self,
        identity: bytes,
        principal: str | None,
        hello: Hello,
        reachable: Callable[[bytes], bool],
    ) -> Admission | Refusal:
        """May ``hello`` join on connection ``identity``? ``reachable(identity)`` says whether
        ZeroMQ still has a connection with that identity (asked only for a takeover)."""
        wid = hello.worker_id
        if reserved_worker_id(wid):
            return Refusal(
                ERR_WORKER_ID,
                f"worker id {wid!r} is reserved for the engine's own workers ('local', "
                "'http/...'): start the worker with another --worker-id",
            )
        replaced: list[Peer] = []
        current = self.by_identity.get(identity)
        if current is not None:
            if current.principal != principal:
                # Another key on a remembered connection identity (a peer may choose its
                # ROUTER identity): never the same connection.
                return Refusal(ERR_WORKER_ID, "this connection identity belongs to another key")
            if current.worker_id != wid:
                return Refusal(
                    ERR_WORKER_ID,
                    f"this connection is worker {current.worker_id!r}: one worker id per "
                    f"connection (open another connection for {wid!r})",
                )
            replaced.append(current)
        old = self.peer_for(wid)
        if old is not None and old.identity != identity:
            same_key = principal is not None and old.principal == principal
            gone = principal is None and old.principal is None and not reachable(old.identity)
            if not (same_key or gone):
                return Refusal(
                    ERR_WORKER_ID,
                    f"worker id {wid!r} is live on another connection: a second worker may not "
                    "take it (it frees when that worker says Bye or stays silent for a few "
                    "heartbeats)",
                )
            replaced.append(old)
        # Every replaced peer is this principal's (checked above): they make room for this one.
        if self._held[principal] - len(replaced) >= self.max_per_principal:
            who = "this key" if principal is not None else "unauthenticated connections"
            return Refusal(
                ERR_WORKER_LIMIT,
                f"{who} already registered {self._held[principal]} workers, the most allowed "
                f"({self.max_per_principal})",
            )
        return Admission(tuple(replaced))

    def add(self, peer: Peer) -> None:
        """Register an admitted peer (after its ``replaced`` peers were removed)."""
        self.by_identity[peer.identity] = peer
        self._by_worker[peer.worker_id] = peer.identity
        self._held[peer.principal] += 1

    def remove(self, peer: Peer) -> bool:
        """Forget ``peer``; False when it was already forgotten."""
        if self.by_identity.get(peer.identity) is not peer:
            return False
        del self.by_identity[peer.identity]
        if self._by_worker.get(peer.worker_id) == peer.identity:
            del self._by_worker[peer.worker_id]
        self._held[peer.principal] -= 1
        if not self._held[peer.principal]:
            del self._held[peer.principal]
        return True
