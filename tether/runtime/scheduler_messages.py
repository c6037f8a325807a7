"""What the scheduler deals in: live leases, the link to a worker, and its messages.

Example::

    scheduler_ref.tell_nowait(WorkReady("python_tool"))
    scheduler_ref.tell_nowait(WorkerReport("w1", "exec_1/fetch/1", fence=1, ok=True, output=3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import msgspec

from tether.persistence.contract import WorkItemRow
from tether.runtime.announced_tools import ToolSignature
from tether.runtime.work import WorkSpec

if TYPE_CHECKING:
    from tether.runtime.ledger import Credit


@dataclass(slots=True, eq=False)
class LiveLease:
    """A lease the scheduler holds for a worker: the work item, its fence, and its clocks."""

    row: WorkItemRow
    fence: int
    owner: str
    spec: WorkSpec
    #: Clock seconds after which the lease is reclaimed (None: never, the in-process pool).
    expires_at: float | None
    #: Clock seconds after which the node counts as timed out (remote leases with a timeout).
    deadline: float | None
    #: Set once a reclaim or timeout was handed to the execution actor: later reports lose.
    closing: bool = False
    #: Adopted at engine start and not heard from since (no heartbeat, report or claim):
    #: it expires a silence after its last renewal (see lease_claims), plus a short grace once
    #: workers can reach the engine.
    adopted: bool = False

    @property
    def work_item_id(self) -> str:
        return self.row.work_item_id


class WorkerLink(Protocol):
    """How the scheduler reaches one worker (the in-process pool or a fleet peer)."""

    def start(self, lease: LiveLease) -> bool:
        """Hand the lease to the worker; False when it cannot be reached."""
        ...

    def quiet(self) -> bool:
        """Has the worker missed its heartbeats (stopped or stalled)? It gets no new work
        until it speaks again (never true for the in-process pool)."""
        ...

    def stop(self, lease: LiveLease, reason: str) -> None:
        """Stop running the lease (reclaimed, timed out, or its execution ended)."""
        ...

    def answer(self, work_item_id: str, fence: int, accepted: bool, reason: str) -> None:
        """Tell the worker whether its report was accepted."""
        ...

    def unknown(self, leases: list[tuple[str, int]]) -> None:
        """Answer a heartbeat: which leases it listed are not (or no longer) its (called for
        every heartbeat, with an empty list when all are)."""
        ...


# --- messages ------------------------------------------------------------------------------


class WorkReady(msgspec.Struct, frozen=True, gc=False):
    """An execution committed a pending item on ``queue``, due at ``not_before_ms``."""

    queue: str
    not_before_ms: int = 0


@dataclass(frozen=True, slots=True)
class WorkerJoined:
    owner: str
    link: WorkerLink
    queues: frozenset[str] | None  # None: every queue
    capacity: int
    #: The in-process pool's credit, which the pool hands back itself (None: remote worker).
    local_credit: Credit | None = None
    #: Queues it never takes (a live set: see ``WorkerEntry.excluded``).
    excluded: set[str] | None = None
    #: The leases (work item, fence) this incarnation of the worker runs or has results for,
    #: as its Hello listed them: any other lease held under its id was its predecessor's and
    #: is reclaimed at once. None: it claims every lease held under its id (the engine's own
    #: workers, and workers that do not list their leases in Hello).
    claims: frozenset[tuple[str, int]] | None = None
    #: The tools it announced (tether.runtime.announced_tools): the engine binds tools it
    #: lacks by these.
    announced: tuple[ToolSignature, ...] = ()


class WorkerLeft(msgspec.Struct, frozen=True, gc=False):
    owner: str
    reason: str


class WorkerCredit(msgspec.Struct, frozen=True, gc=False):
    """``n`` more items the worker can take; negative: take back that many unused credits
    (a polling worker whose claim ended without a grant)."""

    owner: str
    n: int


class WorkerHeartbeat(msgspec.Struct, frozen=True, gc=False):
    owner: str
    leases: list[tuple[str, int]]


class WorkerReport(msgspec.Struct, frozen=True, gc=False):
    """A worker's outcome for a lease; ``retry_after_secs`` set means rate limited (park)."""

    owner: str
    work_item_id: str
    fence: int
    ok: bool
    output: object = None
    error: str = ""
    error_type: str = ""
    retryable: bool = True
    duration_ms: int = 0
    retry_after_secs: float | None = None
    traceback: str = ""
    #: The worker does not serve this step (parked for another): never granted it again.
    declined: bool = False
    #: ``NodeFailed.cause``; set only by the scheduler's own reclaims, never from the wire.
    cause: str = ""


class Settled(msgspec.Struct, frozen=True, gc=False):
    """The execution actor's answer to an outcome: committed, or refused with the reason.

    ``parked_until_ms`` set: the item was parked on ``queue`` and is granted again from then.
    """

    work_item_id: str
    fence: int
    accepted: bool
    reason: str = ""
    parked_until_ms: int | None = None
    queue: str = ""


class ExecutionClosed(msgspec.Struct, frozen=True, gc=False):
    """An execution ended; its open items were settled in its last turn: stop their leases."""

    work_item_ids: list[str]
    reason: str


class Leased(msgspec.Struct, frozen=True, gc=False):
    """An execution committed items leased at creation to remote workers: send the grants."""

    rows: list[WorkItemRow]


class SlotsFreed(msgspec.Struct, frozen=True, gc=False):
    """A worker has free slots again while items were waiting for one: the in-process pool,
    or a fleet worker whose Credit its link applied to the ledger."""


class WorkersCanConnect(msgspec.Struct, frozen=True, gc=False):
    """A worker transport is listening: leases adopted at start get their grace from now, and
    expire after the transport's ``silence_ms`` (when it says; see lease_claims)."""

    silence_ms: int | None = None


class GetLeases(msgspec.Struct, frozen=True, gc=False):
    """Ask: the live leases, for inspection and tests."""
