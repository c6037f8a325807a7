"""Stateful property test of the lease table (I5) against a small model, on both backends.

Any interleaving of create, grant, heartbeat, advancing the clock, reclaim (settle failed with
the fence the scheduler saw after expiry), complete, fail, park, dead-letter, cancel, batches
of racing settles and reopens of the durable stores (SQLite; Postgres too, in a schema of its
own, when TETHER_TEST_POSTGRES_URL names a server) must: never accept a stale fence, never
lose a work item (each created item is in exactly one status; only a settle takes it out of
the open ones), never hand out two leases with one fence, and never lower a fence.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from postgres_schemas import FreshSchema, server_url

from tether.persistence import (
    MemoryStore,
    NewRecord,
    SequenceConflict,
    Settle,
    SqliteStore,
    StaleFence,
    Store,
    Turn,
    WorkItemRow,
)

T = TypeVar("T")
EXECUTIONS = ("e0", "e1", "e2")
QUEUES = st.sampled_from(["q1", "q1", "q2"])
TTL = st.sampled_from([5, 20, 60])
SETTLE_KIND = st.sampled_from(["completed", "failed", "parked", "parked", "dead"])
OPEN = ("pending", "leased", "parked")


@dataclass(frozen=True)
class M:
    """The model of one row: what the store must report."""

    queue: str
    created: int
    status: str = "pending"
    fence: int = 0
    owner: str | None = None
    expires: int | None = None
    not_before: int = 0
    parks: int = 0


def view(row: WorkItemRow) -> tuple[object, ...]:
    return (row.work_item_id, row.queue, row.status, row.fence, row.lease_owner,
            row.lease_expires_ms, row.not_before_ms, row.parks, row.attempt)  # fmt: skip


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.dir = Path(tempfile.mkdtemp(prefix="tether-leases-"))
        base = server_url()
        self.schema = FreshSchema(base) if base is not None else None
        self.memory: Store = MemoryStore()
        self.run(self.memory.open())
        self.durable = self.open_durable()
        self.now = 0
        self.items: dict[str, M] = {}
        self.next_seq = dict.fromkeys(EXECUTIONS, 1)
        self.held: list[tuple[str, int]] = []  # every lease handed out, stale ones included
        self.workers = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def open_durable(self) -> list[Store]:
        stores: list[Store] = [SqliteStore(self.dir / "leases.db", durability="normal")]
        if self.schema is not None:
            from tether.persistence.postgres import PostgresStore  # the driver is optional

            stores.append(PostgresStore(self.schema.url, durability="normal"))
        for store in stores:
            self.run(store.open())
        return stores

    def stores(self) -> tuple[Store, ...]:
        return (self.memory, *self.durable)

    # ---------------------------------------------------------------------------- model

    def expected_settle(self, s: Settle) -> str:
        m = self.items[s.work_item_id]
        if s.fence is None:
            return "ok" if m.status in OPEN else "stale"
        return "ok" if (m.status, m.fence) == ("leased", s.fence) else "stale"

    def model_settle(self, s: Settle) -> None:
        m = self.items[s.work_item_id]
        parked = s.status == "parked"
        self.items[s.work_item_id] = replace(
            m, status=s.status, owner=None, expires=None,
            not_before=s.not_before_ms if parked else m.not_before,
            parks=m.parks + parked,
        )  # fmt: skip

    def settle_turns(self, settles: list[tuple[str, Settle]]) -> None:
        """Append one turn per (execution, settle), all queued at once, on both stores; the
        model takes them in order (a refused turn leaves the next one of its execution with a
        sequence conflict)."""
        ahead = dict(self.next_seq)
        turns = []
        for eid, s in settles:
            turns.append(Turn(eid, ahead[eid], (NewRecord("settle", b"s"),), settles=(s,)))
            ahead[eid] += 1
        expected = []
        for t in turns:
            if t.expected_seq != self.next_seq[t.execution_id]:
                expected.append("conflict")
                continue
            outcome = self.expected_settle(t.settles[0])
            expected.append(outcome)
            if outcome == "stale" and self.items[t.settles[0].work_item_id].status == "leased":
                event("settle refused to a zombie")
            if outcome == "ok":
                self.model_settle(t.settles[0])
                self.next_seq[t.execution_id] += 1
        for outcome in expected:
            event(f"settle {outcome}")
        for store in self.stores():
            got = self.run(self.appends(store, turns))
            assert got == expected, (store, got, expected)
        for eid in EXECUTIONS:
            for store in self.stores():  # refused turns wrote no record
                assert len(self.run(store.read(eid))) == self.next_seq[eid] - 1

    async def appends(self, store: Store, turns: list[Turn]) -> list[str]:
        async def one(t: Turn) -> str:
            try:
                await store.append(t)
                return "ok"
            except StaleFence:
                return "stale"
            except SequenceConflict:
                return "conflict"

        return list(await asyncio.gather(*(one(t) for t in turns)))

    def pick_lease(self, data: st.DataObject) -> tuple[str, int]:
        """A lease some worker holds: a live one, a zombie's (the item was granted again since,
        the case fencing exists for) or any, most likely finished."""
        live: list[tuple[str, int]] = []
        zombies: list[tuple[str, int]] = []
        for wid, fence in self.held:
            m = self.items[wid]
            if m.status == "leased":
                (live if m.fence == fence else zombies).append((wid, fence))
        kind = data.draw(st.sampled_from(["live", "live", "zombie", "any"]), label="holder")
        pool = {"live": live, "zombie": zombies}.get(kind) or self.held
        lease: tuple[str, int] = data.draw(st.sampled_from(pool), label="lease")
        return lease

    # ---------------------------------------------------------------------------- rules

    @initialize()
    def some_items(self) -> None:
        self.create("e0", "q1", 3, 0, False)
        self.create("e1", "q2", 1, 0, False)

    @rule(eid=st.sampled_from(EXECUTIONS), queue=QUEUES, count=st.integers(1, 3),
          delay=st.sampled_from([0, 0, 15]), again=st.booleans())  # fmt: skip
    def create(self, eid: str, queue: str, count: int, delay: int, again: bool) -> None:
        rows = []
        for _ in range(count):
            wid = f"{eid}/n/{len(self.items)}"
            rows.append(WorkItemRow(wid, eid, "n", queue, 1, len(self.items), b"p",
                                    not_before_ms=self.now + delay,
                                    created_at_ms=self.now))  # fmt: skip
            self.items[wid] = M(queue, self.now, not_before=self.now + delay)
        if again and len(self.items) > count:  # recovery re-derives an existing item: no-op
            old = sorted(self.items)[0]
            rows.append(WorkItemRow(old, eid, "n", "q1", 1, 0, b"other"))
        t = Turn(eid, self.next_seq[eid], (NewRecord("created", b"c"),), work_items=tuple(rows))
        for store in self.stores():
            assert self.run(store.append(t)) == t.expected_seq
        self.next_seq[eid] += 1

    @rule(queue=QUEUES, limit=st.integers(1, 3), ttl=TTL)
    def grant(self, queue: str, limit: int, ttl: int) -> None:
        self.workers += 1
        owner = f"w{self.workers}"
        due = sorted(
            (m.not_before, m.created, wid)
            for wid, m in self.items.items()
            if m.queue == queue and m.status in ("pending", "parked") and m.not_before <= self.now
        )[:limit]
        expected = []
        for _, _, wid in due:
            m = self.items[wid]
            self.items[wid] = replace(m, status="leased", fence=m.fence + 1, owner=owner,
                                      expires=self.now + ttl)  # fmt: skip
            expected.append((wid, m.fence + 1, owner, self.now + ttl))
        for store in self.stores():
            leases = self.run(store.grant(queue, owner, self.now, ttl, limit))
            assert [(x.work_item_id, x.fence, x.owner, x.expires_ms) for x in leases] == expected
        event(f"granted {len(expected)}")
        if any(fence > 1 for _, fence, _, _ in expected):
            event("granted again (fence > 1)")
        self.held.extend((wid, fence) for wid, fence, _, _ in expected)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), ttl=TTL)
    def heartbeat(self, data: st.DataObject, ttl: int) -> None:
        wid, fence = self.pick_lease(data)
        m = self.items[wid]
        live = (m.status, m.fence) == ("leased", fence)
        for store in self.stores():
            try:
                got: object = self.run(store.heartbeat(wid, fence, self.now, ttl))
            except StaleFence as exc:
                got = ("stale", exc.current, exc.status)
            assert got == (self.now + ttl if live else ("stale", m.fence, m.status))
        event(f"heartbeat {'live' if live else 'stale'}")
        if not live and m.status == "leased":
            event("heartbeat refused to a zombie")
        if live:
            self.items[wid] = replace(m, expires=self.now + ttl)

    @rule(dt=st.integers(1, 40))
    def advance(self, dt: int) -> None:
        self.now += dt

    @rule(limit=st.integers(1, 3))
    def reclaim(self, limit: int) -> None:
        """The scheduler's sweep: expired leases, each settled failed with the fence it saw."""
        expired = sorted(
            (m.expires, wid)
            for wid, m in self.items.items()
            if m.status == "leased" and m.expires is not None and m.expires <= self.now
        )[:limit]
        for store in self.stores():
            rows = self.run(store.expired_leases(self.now, limit))
            assert [(r.lease_expires_ms, r.work_item_id) for r in rows] == expired
        self.settle_turns([
            (wid.split("/")[0], Settle(wid, "failed", fence=self.items[wid].fence,
                                       error="lease expired"))
            for _, wid in expired
        ])  # fmt: skip

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), kind=SETTLE_KIND, park_for=st.sampled_from([0, 0, 10, 30]))
    def settle(self, data: st.DataObject, kind: str, park_for: int) -> None:
        """A worker (or the engine on its behalf) settles with the fence it holds, which may
        be stale."""
        wid, fence = self.pick_lease(data)
        s = Settle(wid, kind, fence=fence, not_before_ms=self.now + park_for)
        self.settle_turns([(wid.split("/")[0], s)])

    @precondition(lambda self: any(m.status == "leased" for m in self.items.values()))
    @rule(data=st.data(), ttl=TTL)
    def rate_limited(self, data: st.DataObject, ttl: int) -> None:
        """The 429 path: a worker parks its item until now, and the next poll of its queue
        grants it again (fence + 1), leaving the first worker a zombie."""
        leased = sorted(w for w, m in self.items.items() if m.status == "leased")
        wid = data.draw(st.sampled_from(leased), label="item")
        fence = self.items[wid].fence
        self.settle_turns(
            [
                (
                    wid.split("/")[0],
                    Settle(wid, "parked", fence=fence, not_before_ms=self.now, error="429"),
                )
            ]
        )
        self.grant(self.items[wid].queue, 5, ttl)

    @precondition(lambda self: bool(self.items))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.items)), label="item")
        self.settle_turns([(wid.split("/")[0], Settle(wid, "cancelled"))])

    @precondition(lambda self: len(self.held) >= 2)
    @rule(data=st.data())
    def racing_settles(self, data: st.DataObject) -> None:
        """Several settles committed in one group: a completion racing a reclaim or a cancel
        of the same item, and turns of one execution checked against each other."""
        settles = []
        for _ in range(data.draw(st.integers(2, 5), label="count")):
            wid, fence = self.pick_lease(data)
            kind = data.draw(st.sampled_from(["completed", "failed", "parked", "cancel"]))
            s = (Settle(wid, "cancelled") if kind == "cancel"
                 else Settle(wid, kind, fence=fence, not_before_ms=self.now))  # fmt: skip
            settles.append((wid.split("/")[0], s))
        self.settle_turns(settles)

    @rule()
    def reopen_durable(self) -> None:
        for store in self.durable:
            self.run(store.close())
        self.durable = self.open_durable()
        expected = sorted((m.created, wid) for wid, m in self.items.items() if m.status in OPEN)
        for store in self.durable:
            rows = self.run(store.open_work_items())
            assert [(r.created_at_ms, r.work_item_id) for r in rows] == expected

    # ------------------------------------------------------------------------ invariants

    @invariant()
    def stores_agree_with_the_model(self) -> None:
        expected = sorted(
            (wid, m.queue, m.status, m.fence, m.owner, m.expires, m.not_before, m.parks, 1)
            for wid, m in self.items.items()
        )
        for store in self.stores():
            rows = self.run(store.list_work_items(limit=10_000))
            # Every created item is there exactly once, in exactly one status.
            assert len(rows) == len({r.work_item_id for r in rows}) == len(self.items)
            assert sorted(view(r) for r in rows) == expected

    @invariant()
    def one_fence_one_lease(self) -> None:
        # Each grant bumps the fence, so no two leases ever handed out share one: at most one
        # holder of an item can match its current fence.
        assert len(set(self.held)) == len(self.held)
        for wid, fence in self.held:
            assert fence <= self.items[wid].fence  # fences only grow

    def teardown(self) -> None:
        try:
            for store in (*self.durable, self.memory):
                self.run(store.close())
        finally:
            self.runner.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.schema is not None:
                self.schema.drop()


LeaseMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_lease_table_agrees_with_the_model_I5 = LeaseMachine.TestCase
