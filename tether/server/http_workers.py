"""The HTTP worker protocol: polling workers (``jamjet worker``, or any HTTP client) serve the
scheduler like ``tether worker`` processes do over ZeroMQ.

A worker claims one item at a time (``POST /work-items/claim {worker_id, queue_types}``); the
claim gives the scheduler one credit for that worker and waits briefly for a grant, and takes
the credit back if none came. The item's ``id`` is a lease token that carries the work item,
its fence and its owner, signed by the engine (see :mod:`tether.server.lease_tokens`), so a
report needs nothing else (the ``jamjet`` client sends no fence) and nobody can make one up.
``complete`` and ``fail`` go through the execution's turn like any worker's Result and answer
once it committed: 200 accepted, or 409 with the reason (a stale fence, a reclaimed lease, a
finished run, a token the engine did not sign) -- nothing of a refused report is applied.

Liveness: a polling worker sends no heartbeat while it runs a step, so the gateway keeps the
scheduler's lease alive for ``lease_ttl_secs`` after the grant (each heartbeat call extends it).
A step still running after that loses its lease: the item runs again elsewhere and the late
report is refused by fence. A worker that stops polling is told to the scheduler as gone.

Example (what the server's lifespan does)::

    gateway = HttpWorkers(runtime, LeaseKey.for_engine(config.lease_key), queues=None)
    await gateway.adopt()                       # leases the scheduler recovered
    task_group.start_soon(gateway.keep_alive)
    await gateway.claim("w1", ["general"])      # {"claimed": False} or {"claimed": True, ...}
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import msgspec

from tether.actors import ActorStopped
from tether.errors import InvalidInput, TetherError
from tether.runtime.internals import runtime_internals
from tether.runtime.runtime import Runtime
from tether.runtime.scheduler import TIMEOUT_GRACE_SECS
from tether.runtime.scheduler_messages import (
    GetLeases,
    LiveLease,
    WorkerCredit,
    WorkerHeartbeat,
    WorkerJoined,
    WorkerLeft,
    WorkerReport,
)
from tether.runtime.work import decode_spec
from tether.server.lease_tokens import (
    OWNER_PREFIX,
    LeaseKey,
    LeaseRef,
    LeaseRefused,
    valid_worker_id,
)
from tether.server.views import iso
from tether.server.worker_declines import Declines
from tether.server.worker_queues import Credential, HttpWorkerQueues

__all__ = ["HttpWorkers", "LeaseAnswerPending"]

#: How long a claim waits for a grant before answering ``{"claimed": false}``.
CLAIM_WAIT_SECS: Final = 1.0
#: How long a complete/fail waits for its execution's turn to commit.
ANSWER_WAIT_SECS: Final = 30.0
#: Remembered stopped leases and settled reports (to answer a late or repeated call); oldest
#: dropped first.
_GONE_KEPT: Final = 10_000


class LeaseAnswerPending(TetherError):
    """The report reached the engine but its turn has not committed yet (503): it may still
    be applied; ask again with the same id for the outcome."""


@dataclass(eq=False)
class _PendingReport:
    """A report waiting for its execution's turn: accepted or refused, with the reason."""

    ok: bool  # a completion (True) or a failure
    since: float  # clock seconds when it was sent
    answered: anyio.Event = field(default_factory=anyio.Event)
    answer: tuple[bool, str] | None = None


@dataclass(frozen=True)
class _SettledReport:
    """How a report was answered, for a client sending it again with the same id."""

    ok: bool
    accepted: bool
    reason: str


@dataclass(eq=False)
class _Held:
    lease: LiveLease
    #: Clock seconds until which the gateway heartbeats it for the worker.
    until: float


@dataclass(eq=False)
class _Worker:
    owner: str
    queues: frozenset[str]
    last_seen: float
    asked: bool = False  # one credit given and not yet used by a grant
    waiting: int = 0  # claims waiting for a grant now
    granted: deque[LiveLease] = field(default_factory=deque)
    held: dict[str, _Held] = field(default_factory=dict)
    arrived: anyio.Event = field(default_factory=anyio.Event)


class _Link:
    """The scheduler's WorkerLink to one HTTP worker: grants wait here for its next claim."""

    def __init__(self, gateway: HttpWorkers, owner: str) -> None:
        self._gateway = gateway
        self._owner = owner

    def start(self, lease: LiveLease) -> bool:
        return self._gateway._granted(self._owner, lease)

    def quiet(self) -> bool:
        return False  # a grant waits for its next claim; a worker that stops claiming leaves

    def stop(self, lease: LiveLease, reason: str) -> None:
        self._gateway._forget(self._owner, lease.work_item_id, lease.fence, reason)

    def answer(self, work_item_id: str, fence: int, accepted: bool, reason: str) -> None:
        self._gateway._answered(self._owner, work_item_id, fence, accepted, reason)

    def unknown(self, leases: list[tuple[str, int]]) -> None:
        for wid, fence in leases:
            self._gateway._forget(self._owner, wid, fence, "the engine holds no such lease")


class HttpWorkers:
    """See the module docstring."""

    def __init__(
        self,
        runtime: Runtime,
        key: LeaseKey,
        *,
        lease_ttl_secs: float = 30.0,
        queues: frozenset[str] | None = None,
    ) -> None:
        """``queues``: the only queues HTTP workers may claim (TETHER_HTTP_WORKER_QUEUES),
        within the remote-only ones (see :mod:`tether.server.worker_queues`)."""
        self._rt = runtime
        self._key = key
        self._internals = runtime_internals(runtime)
        self._queues = HttpWorkerQueues(self._internals.services.remote_queues, configured=queues)
        self._ttl = lease_ttl_secs
        self._workers: dict[str, _Worker] = {}
        # Keyed by (owner, work item, fence): one report per lease holder.
        self._answers: dict[tuple[str, str, int], _PendingReport] = {}
        self._settled: OrderedDict[tuple[str, str, int], _SettledReport] = OrderedDict()
        self._gone: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._declines = Declines()

    # -- the API ----------------------------------------------------------------------------

    async def claim(
        self, worker_id: str, queues: list[str], credential: Credential | None = None
    ) -> dict[str, Any]:
        owner = _owner(worker_id)
        if not queues or not all(isinstance(q, str) and q for q in queues):
            raise InvalidInput("queue_types must name at least one queue, e.g. ['general']")
        # Joined for the queues it may be handed now (more as workflows load).
        worker = await self._worker(owner, self._queues.claimable(queues, credential))
        if not worker.granted:
            worker.waiting += 1
            try:
                await self._wait_for_grant(worker)
            finally:
                worker.waiting -= 1
                if not worker.granted and worker.waiting == 0:
                    await self._withdraw(worker)
        if not worker.granted:
            return {"claimed": False}
        lease = worker.granted.popleft()
        held = worker.held[lease.work_item_id]
        held.until = max(held.until, self._rt.clock.now() + self._lifetime(lease))
        return {"claimed": True, "work_item": self._view(lease, held)}

    async def report(
        self,
        token: str,
        *,
        ok: bool,
        output: Any = None,
        state_patch: dict[str, Any] | None = None,
        error: str = "",
        duration_ms: int = 0,
        traceback: str = "",
    ) -> dict[str, Any]:
        """Complete or fail a lease; returns once its execution's turn committed. A
        whole-state step's ``state_patch`` (what it changed) is what is merged into state."""
        ref = self._key.verify(token)
        key = (ref.owner, ref.work_item_id, ref.fence)
        # What can fail comes first, so a report is reserved only when it is sent at once.
        worker = await self._worker(ref.owner, None)
        held = worker.held.get(ref.work_item_id)
        value = output
        if ok and state_patch is not None and key not in self._settled:
            merge = held.lease.spec.merge if held is not None else await self._merges(ref)
            value = state_patch if merge else output
        earlier = self._settled.get(key) or self._answers.get(key)
        if earlier is not None and earlier.ok != ok:
            kind = "completed" if earlier.ok else "failed"
            raise LeaseRefused(f"work item {ref.work_item_id}: already reported as {kind}")
        if isinstance(earlier, _PendingReport):  # a retry: the first one's answer is its own
            return self._outcome(token, ref, await self._await_answer(ref, earlier))
        if earlier is not None:
            return self._outcome(token, ref, (earlier.accepted, earlier.reason))
        if held is not None and held.lease.fence == ref.fence:
            # Settling takes a commit: the lease must not lapse meanwhile.
            held.until = max(held.until, self._rt.clock.now() + self._ttl)
        pending = self._answers[key] = _PendingReport(ok, self._rt.clock.now())
        park = None if ok else self._declines.park_secs(error, ref.work_item_id)
        if park is not None:
            error = f"{error}: worker {ref.owner} does not serve this step (offered again)"
        report = WorkerReport(
            ref.owner, ref.work_item_id, ref.fence, ok, value if ok else None,
            error, "" if ok else "WorkerError", True, duration_ms, park, traceback,
            declined=park is not None,
        )  # fmt: skip
        try:
            await self._internals.tell_scheduler(report)
        except BaseException:  # never sent: nobody will answer it
            self._drop_pending(key, pending)
            raise
        answer = await self._await_answer(ref, pending)
        if ok and not answer[0] and await self._completed_by(ref):
            answer = (True, "")  # a resend of a completion applied before an engine restart
        return self._outcome(token, ref, answer)

    async def _completed_by(self, ref: LeaseRef) -> bool:
        """Did this lease's completion commit already? A row completed at the lease's fence
        was completed by a report of its holder: only the holder was handed the signed token
        for that fence (cancels settle without a fence)."""
        row = await self._rt.store.get_work_item(ref.work_item_id)
        return row is not None and row.status == "completed" and row.fence == ref.fence

    def _drop_pending(self, key: tuple[str, str, int], pending: _PendingReport) -> None:
        """Stop waiting for an answer that will not come; waiters get a 503 and a resend is
        sent afresh."""
        if self._answers.get(key) is pending:
            del self._answers[key]
        pending.answered.set()

    async def _await_answer(self, ref: LeaseRef, pending: _PendingReport) -> tuple[bool, str]:
        with anyio.move_on_after(ANSWER_WAIT_SECS):
            await pending.answered.wait()
        if pending.answer is None:
            raise LeaseAnswerPending(
                f"work item {ref.work_item_id}: the report is not settled yet; it may still "
                "be applied (send it again with the same id to learn the outcome)"
            )
        return pending.answer

    def _outcome(self, token: str, ref: LeaseRef, answer: tuple[bool, str]) -> dict[str, Any]:
        accepted, reason = answer
        if not accepted:
            raise LeaseRefused(reason)
        self._forget(ref.owner, ref.work_item_id, ref.fence, "it was already reported")
        return {"id": token, "work_item_id": ref.work_item_id, "accepted": True}

    async def heartbeat(self, token: str) -> dict[str, Any]:
        """Extend a lease the gateway holds for its worker; any other is refused (409)."""
        ref = self._key.verify(token)
        worker = await self._worker(ref.owner, None)
        held = worker.held.get(ref.work_item_id)
        if held is None or held.lease.fence != ref.fence:
            gone = self._gone.get((ref.work_item_id, ref.fence), "no live lease")
            raise LeaseRefused(f"work item {ref.work_item_id}: {gone}")
        held.until = max(held.until, self._rt.clock.now() + self._ttl)
        await self._internals.tell_scheduler(
            WorkerHeartbeat(ref.owner, [(ref.work_item_id, ref.fence)])
        )
        return {"id": token, "lease_expires_at": iso(int(held.until * 1000))}

    async def _wait_for_grant(self, worker: _Worker) -> None:
        worker.arrived = anyio.Event()  # before the credit: a grant may race it
        if not worker.asked:
            worker.asked = True
            await self._internals.tell_scheduler(WorkerCredit(worker.owner, 1))
        with anyio.move_on_after(CLAIM_WAIT_SECS):
            while not worker.granted:
                await worker.arrived.wait()
                if not worker.granted:  # taken by another claim, or stopped: wait anew
                    worker.arrived = anyio.Event()

    async def _withdraw(self, worker: _Worker) -> None:
        """The last waiting claim left without a grant (timed out, or cancelled): take the
        credit back, so a worker that stops polling is not granted an item it will never
        claim (stranded for the lease lifetime, then an attempt spent). A grant racing this
        lands in ``granted`` for the next claim."""
        if worker.asked and self._workers.get(worker.owner) is worker:
            worker.asked = False
            with anyio.CancelScope(shield=True), contextlib.suppress(ActorStopped):
                await self._internals.tell_scheduler(WorkerCredit(worker.owner, -1))

    # -- liveness ---------------------------------------------------------------------------

    async def keep_alive(self) -> None:
        """Heartbeat what HTTP workers hold and retire workers that stopped polling (after
        ``adopt``). Ends when the runtime stops."""
        try:
            interval = max(0.05, self._internals.lease_ttl_ms / 4000)
            while True:
                await self._rt.clock.sleep(interval)
                await self._tick()
        except ActorStopped:
            return  # the runtime is shutting down

    async def adopt(self) -> None:
        """Before serving: after an engine restart the scheduler holds the leases of HTTP
        workers from its table, but only for its own TTL; keep them for the HTTP lifetime.
        Not when the lease key is new since the restart: no worker can present those tokens,
        so the scheduler reclaims their leases after its own TTL and the steps run again."""
        if not self._key.durable:
            return
        leases = await self._internals.ask_scheduler(GetLeases())
        assert isinstance(leases, dict)
        for lease in leases.values():
            if isinstance(lease, LiveLease) and lease.owner.startswith(OWNER_PREFIX):
                worker = await self._worker(lease.owner, None)
                until = self._rt.clock.now() + self._lifetime(lease)
                worker.held.setdefault(lease.work_item_id, _Held(lease, until))
        # Heard from now, not at the first keep-alive tick: the scheduler gives an adopted
        # lease only a short grace for its worker to speak, and the API starts after the
        # worker port (tether dev loads it meanwhile).
        for owner, worker in list(self._workers.items()):
            await self._heartbeat(owner, worker)

    async def _heartbeat(self, owner: str, worker: _Worker) -> bool:
        """Tell the scheduler ``worker`` still holds its leases; False if it holds none."""
        refs = [(w, h.lease.fence) for w, h in worker.held.items()]
        if refs:
            await self._internals.tell_scheduler(WorkerHeartbeat(owner, refs))
        return bool(refs)

    async def _tick(self) -> None:
        now = self._rt.clock.now()
        # The scheduler answers no report whose lease was reclaimed or dropped meanwhile:
        # give up on those, so a resend is sent afresh (and refused or applied by fence).
        stale = now - self._ttl - 2 * ANSWER_WAIT_SECS
        for key, pending in [(k, p) for k, p in self._answers.items() if p.since < stale]:
            self._drop_pending(key, pending)
        for owner, worker in list(self._workers.items()):
            if self._workers.get(owner) is not worker:
                continue  # replaced while an earlier worker's message was sent
            # Past its time a lease is no longer heartbeated: the scheduler reclaims it.
            for wid in [w for w, h in worker.held.items() if h.until <= now]:
                del worker.held[wid]
            kept = [x for x in worker.granted if x.work_item_id in worker.held]
            if len(kept) != len(worker.granted):
                worker.granted.clear()
                worker.granted.extend(kept)
            if await self._heartbeat(owner, worker):
                continue
            if now - worker.last_seen > self._ttl:
                del self._workers[owner]
                await self._internals.tell_scheduler(WorkerLeft(owner, "stopped polling"))

    def _lifetime(self, lease: LiveLease) -> float:
        """How long a lease lives unheartbeated: the HTTP TTL, or the node's timeout when
        longer (a polling worker cannot heartbeat while it runs a step)."""
        timeout = lease.spec.timeout_secs
        return max(self._ttl, timeout + TIMEOUT_GRACE_SECS if timeout else 0.0)

    # -- the scheduler's side ---------------------------------------------------------------

    def _granted(self, owner: str, lease: LiveLease) -> bool:
        worker = self._workers.get(owner)
        if worker is None:
            return False
        worker.asked = False
        worker.granted.append(lease)
        until = self._rt.clock.now() + self._lifetime(lease)
        worker.held[lease.work_item_id] = _Held(lease, until)
        worker.arrived.set()
        return True

    def _forget(self, owner: str, work_item_id: str, fence: int, reason: str) -> None:
        worker = self._workers.get(owner)
        if worker is not None:
            held = worker.held.get(work_item_id)
            if held is not None and held.lease.fence == fence:
                del worker.held[work_item_id]
                worker.granted = deque(x for x in worker.granted if x is not held.lease)
        _remember(self._gone, (work_item_id, fence), reason)

    def _answered(
        self, owner: str, work_item_id: str, fence: int, accepted: bool, reason: str
    ) -> None:
        key = (owner, work_item_id, fence)
        pending = self._answers.pop(key, None)
        if pending is None:
            return  # not a report of this gateway's (a heartbeat's refusal goes to unknown)
        if pending.answer is None:
            pending.answer = (accepted, reason)
            pending.answered.set()
        # Kept for a while: a report answered 503 (or retried) learns its outcome when sent
        # again with the same id.
        _remember(self._settled, key, _SettledReport(pending.ok, accepted, reason))

    # -- helpers ----------------------------------------------------------------------------

    async def _worker(self, owner: str, queues: frozenset[str] | None) -> _Worker:
        """The worker's entry, joining it to the scheduler first (again if its queues changed;
        a report after an engine restart joins it serving nothing until it claims)."""
        now = self._rt.clock.now()
        worker = self._workers.get(owner)
        if worker is not None and (queues is None or queues == worker.queues):
            worker.last_seen = now
            return worker
        fresh = _Worker(owner, queues or frozenset(), now)
        self._workers[owner] = fresh  # before any await: a concurrent call finds this one
        if worker is not None:  # new queues: the same worker, joined again (leases kept)
            fresh.held, fresh.granted = worker.held, worker.granted
            await self._internals.tell_scheduler(WorkerLeft(owner, "replaced"))
        await self._internals.tell_scheduler(
            WorkerJoined(owner, _Link(self, owner), fresh.queues, 0)
        )
        return fresh

    async def _merges(self, ref: LeaseRef) -> bool:
        row = await self._rt.store.get_work_item(ref.work_item_id)
        if row is None:
            raise LeaseRefused(f"work item {ref.work_item_id}: unknown to this engine")
        try:
            return decode_spec(row.payload).merge
        except msgspec.DecodeError:
            return False

    def _view(self, lease: LiveLease, held: _Held) -> dict[str, Any]:
        row, spec = lease.row, lease.spec
        return {
            "id": self._key.sign(row.work_item_id, lease.fence, lease.owner),
            "work_item_id": row.work_item_id,
            "execution_id": row.execution_id,
            "node_id": row.node_id,
            "queue_type": row.queue,
            "attempt": row.attempt,
            "fence": lease.fence,
            "tool": spec.tool,
            "input": spec.input,
            "timeout_secs": spec.timeout_secs,
            "merge_state": spec.merge,
            "lease_expires_at": iso(int(held.until * 1000)),
        }


def _remember(memo: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, dropping the oldest beyond ``_GONE_KEPT`` entries."""
    memo[key] = value
    while len(memo) > _GONE_KEPT:
        memo.popitem(last=False)


def _owner(worker_id: str) -> str:
    if not valid_worker_id(worker_id):
        raise InvalidInput("worker_id must be 1-200 printable characters")
    return OWNER_PREFIX + worker_id
