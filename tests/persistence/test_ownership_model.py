"""Stateful property test of execution ownership (I5 for executions, I6) against a model.

Three engines share one Postgres schema. Any interleaving of starting runs, appending turns,
an engine's row expiring, renewals (with the reconcile after a lapse), claims of orphans and
acquires must: accept a turn only from the engine that owns its execution with the fence the
table holds (a stale owner is refused and forgets its fence), hand each orphan to exactly one
claimer with the fence + 1, never lower a fence, and keep every journal gapless. Needs a
server (TETHER_TEST_POSTGRES_URL); skipped otherwise, saying how to run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from postgres_schemas import FreshSchema, server_url, why

from tether.persistence import IndexUpdate, NewRecord, Turn
from tether.persistence.ownership import OwnedElsewhere, OwnershipLost

pytestmark = pytest.mark.skipif(server_url() is None, reason=why() or "no Postgres server")

T = TypeVar("T")
ENGINES = ("eng0", "eng1", "eng2")
EXECUTIONS = ("e0", "e1", "e2", "e3")
ENGINE = st.sampled_from(ENGINES)
EXECUTION = st.sampled_from(EXECUTIONS)
TTL = 600_000  # renewals happen only when a rule says so


class OwnershipMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import psycopg

        from tether.persistence.postgres import PostgresStore

        self.psycopg = psycopg
        self.runner = asyncio.Runner()
        base = server_url()
        assert base is not None
        self.schema = FreshSchema(base)
        self.stores = {e: PostgresStore(self.schema.url, "normal", engine_id=e) for e in ENGINES}
        for store in self.stores.values():
            self.run(store.open())
            self.run(store.ownership.register(TTL))
        self.alive = dict.fromkeys(ENGINES, True)
        self.owner: dict[str, tuple[str, int]] = {}  # the table's owner rows
        self.held: dict[str, dict[str, int]] = {e: {} for e in ENGINES}  # each engine's view
        self.next_seq: dict[str, int] = {}
        self.top_fence: dict[str, int] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.psycopg.connect(self.schema.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def own(self, eid: str, engine: str, fence: int) -> None:
        self.owner[eid] = (engine, fence)
        self.held[engine][eid] = fence
        assert fence >= self.top_fence.get(eid, 0)  # fences never go down
        self.top_fence[eid] = fence

    # ----------------------------------------------------------------------------- rules

    @rule(engine=ENGINE, eid=EXECUTION)
    def start(self, engine: str, eid: str) -> None:
        if eid in self.next_seq:
            return
        index = IndexUpdate("running", 1, workflow_id="wf", workflow_version="1")
        turn = Turn(eid, 1, (NewRecord("execution_started", b"{}"),), index=index)
        assert self.run(self.stores[engine].append(turn)) == 1
        self.next_seq[eid] = 2
        self.own(eid, engine, 1)

    @precondition(lambda self: bool(self.next_seq))
    @rule(engine=ENGINE, data=st.data())
    def append(self, engine: str, data: st.DataObject) -> None:
        eid = data.draw(st.sampled_from(sorted(self.next_seq)))
        turn = Turn(eid, self.next_seq[eid], (NewRecord("step", b"x"),))
        owner = self.owner[eid]
        if owner == (engine, self.held[engine].get(eid)):
            assert self.run(self.stores[engine].append(turn)) == self.next_seq[eid]
            self.next_seq[eid] += 1
            return
        event("append refused to a non-owner")
        with pytest.raises(OwnershipLost):
            self.run(self.stores[engine].append(turn))
        self.held[engine].pop(eid, None)  # a refused engine forgets its fence

    @rule(engine=ENGINE)
    def expire(self, engine: str) -> None:
        self.sql("UPDATE tether_engines SET expires_ms = 0 WHERE engine_id = %s", (engine,))
        self.alive[engine] = False

    @rule(engine=ENGINE)
    def renew(self, engine: str) -> None:
        lapsed = self.run(self.stores[engine].ownership.renew(TTL))
        assert lapsed == (not self.alive[engine])
        self.alive[engine] = True
        if lapsed:
            lost = self.run(self.stores[engine].ownership.reconcile())
            expect = [e for e, f in self.held[engine].items() if self.owner[e] != (engine, f)]
            assert sorted(lost) == sorted(expect)
            for eid in lost:
                self.held[engine].pop(eid)

    @rule(engine=ENGINE, limit=st.integers(1, 4))
    def claim(self, engine: str, limit: int) -> None:
        orphans = sorted(e for e, (g, _) in self.owner.items() if g != engine and not self.alive[g])
        claimed = self.run(self.stores[engine].ownership.claim_orphans(limit))
        assert sorted(claimed) == orphans[:limit]  # the oldest ids (RETURNING has no order)
        for eid in claimed:
            event("orphan claimed")
            self.own(eid, engine, self.owner[eid][1] + 1)

    @precondition(lambda self: bool(self.next_seq))
    @rule(engine=ENGINE, data=st.data())
    def acquire(self, engine: str, data: st.DataObject) -> None:
        eid = data.draw(st.sampled_from(sorted(self.next_seq)))
        ownership = self.stores[engine].ownership
        if eid in self.held[engine]:  # what it holds, without asking (an append checks it)
            assert self.run(ownership.acquire(eid)) == self.held[engine][eid]
            return
        owner, fence = self.owner[eid]
        if owner != engine and self.alive[owner]:
            with pytest.raises(OwnedElsewhere):
                self.run(ownership.acquire(eid))
            return
        taken = fence if owner == engine else fence + 1
        assert self.run(ownership.acquire(eid)) == taken
        self.own(eid, engine, taken)

    # ------------------------------------------------------------------------ invariants

    @invariant()
    def the_table_agrees_with_the_model(self) -> None:
        rows = self.sql("SELECT execution_id, engine_id, fence FROM tether_owners")
        assert {e: (g, f) for e, g, f in rows} == self.owner
        for engine, store in self.stores.items():
            assert store.fences is not None and store.fences.held == self.held[engine]

    @invariant()
    def journals_are_gapless(self) -> None:
        rows = self.sql("SELECT execution_id, count(*), max(seq) FROM tether_journal"
                        " GROUP BY execution_id")  # fmt: skip
        assert {e: (n, top) for e, n, top in rows} == {
            e: (s - 1, s - 1) for e, s in self.next_seq.items()
        }

    def teardown(self) -> None:
        try:
            for store in self.stores.values():
                self.run(store.close())
        finally:
            self.runner.close()
            self.schema.drop()


OwnershipMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # No shrinking: each step is a round trip to the server, and a shrink took minutes; the
    # failing case is printed whole, and --hypothesis-seed replays it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
test_ownership_agrees_with_the_model_I5_I6 = OwnershipMachine.TestCase
