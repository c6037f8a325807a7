"""Model-based test: random appends (valid and conflicting, alone and batched), snapshots,
reads and reopens of the durable stores; every store (memory, SQLite, and Postgres in a schema
of its own when TETHER_TEST_POSTGRES_URL names a server) must agree exactly with a
dict-of-lists model."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from postgres_schemas import FreshSchema, server_url

from tether.persistence import MemoryStore, NewRecord, SequenceConflict, SqliteStore, Store, Turn

EXECUTIONS = st.sampled_from(["a", "b", "c"])
RECORDS = st.lists(
    st.tuples(st.sampled_from(["x", "y", "z"]), st.binary(max_size=12)), min_size=1, max_size=3
)
# 0 appends at the right place; the others are off by one or more (conflicts).
SKEW = st.sampled_from([0, 0, 0, -1, 1, 2])
SNAPSHOT = st.none() | st.binary(min_size=1, max_size=8)

T = TypeVar("T")
Outcome = tuple[str, int]  # ("ok", last_seq) or ("conflict", actual_next)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Hypothesis drives rules synchronously; each machine runs its own event loop.
        self.runner = asyncio.Runner()
        self.dir = Path(tempfile.mkdtemp(prefix="tether-model-"))
        self.journal: dict[str, list[tuple[str, bytes]]] = {}
        self.snapshots: dict[str, tuple[int, bytes]] = {}
        base = server_url()
        self.schema = FreshSchema(base) if base is not None else None
        self.memory: Store = MemoryStore()
        self.run(self.memory.open())
        self.durable = self.open_durable()

    def open_durable(self) -> list[Store]:
        stores: list[Store] = [SqliteStore(self.dir / "model.db")]
        if self.schema is not None:
            from tether.persistence.postgres import PostgresStore  # the driver is optional

            stores.append(PostgresStore(self.schema.url))
        for store in stores:
            self.run(store.open())
        return stores

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def model_append(self, t: Turn) -> Outcome:
        rows = self.journal.setdefault(t.execution_id, [])
        if t.expected_seq != len(rows) + 1:
            return ("conflict", len(rows) + 1)
        rows.extend((r.type, r.payload) for r in t.records)
        if t.snapshot is not None:
            self.snapshots[t.execution_id] = (t.last_seq, t.snapshot)
        return ("ok", t.last_seq)

    def make_turn(self, eid: str, records: list[tuple[str, bytes]], skew: int,
                  snapshot: bytes | None, ahead: int = 0) -> Turn:  # fmt: skip
        expected = len(self.journal.get(eid, [])) + ahead + 1 + skew
        if expected < 1:
            expected = len(self.journal.get(eid, [])) + ahead + 2
        return Turn(eid, expected, tuple(NewRecord(t, p) for t, p in records), snapshot=snapshot)

    async def store_appends(self, store: Store, turns: list[Turn]) -> list[Outcome]:
        async def one(t: Turn) -> Outcome:
            try:
                return ("ok", await store.append(t))
            except SequenceConflict as exc:
                return ("conflict", exc.actual_next)

        # gather starts the appends in order, so the SQLite writer sees them in that order.
        return list(await asyncio.gather(*(one(t) for t in turns)))

    def check_appends(self, turns: list[Turn]) -> None:
        got = [self.run(self.store_appends(s, turns)) for s in (self.memory, *self.durable)]
        expected = [self.model_append(t) for t in turns]
        assert got == [expected] * len(got)

    @rule(eid=EXECUTIONS, records=RECORDS, skew=SKEW, snapshot=SNAPSHOT)
    def append(self, eid: str, records: list[tuple[str, bytes]], skew: int,
               snapshot: bytes | None) -> None:  # fmt: skip
        self.check_appends([self.make_turn(eid, records, skew, snapshot)])

    @rule(batch=st.lists(st.tuples(EXECUTIONS, RECORDS, SKEW, SNAPSHOT), min_size=2, max_size=6))
    def append_batch(self, batch: list[tuple[str, list[tuple[str, bytes]], int, bytes | None]]
                     ) -> None:  # fmt: skip
        # Expected seqs assume the earlier turns of the batch succeed (as an actor would), so
        # same-execution turns in one group commit are checked against each other.
        ahead: dict[str, int] = {}
        turns = []
        for eid, records, skew, snapshot in batch:
            t = self.make_turn(eid, records, skew, snapshot, ahead.get(eid, 0))
            if skew == 0:
                ahead[eid] = ahead.get(eid, 0) + len(records)
            turns.append(t)
        self.check_appends(turns)

    @rule(eid=EXECUTIONS, data=st.data())
    def read(self, eid: str, data: st.DataObject) -> None:
        rows = self.journal.get(eid, [])
        from_seq = data.draw(st.integers(1, len(rows) + 2), label="from_seq")
        expected = [(from_seq + i, t, p) for i, (t, p) in enumerate(rows[from_seq - 1 :])]
        for store in (self.memory, *self.durable):
            got = self.run(store.read(eid, from_seq))
            assert [(r.seq, r.type, r.payload) for r in got] == expected

    @rule(eid=EXECUTIONS)
    def latest_snapshot(self, eid: str) -> None:
        for store in (self.memory, *self.durable):
            snap = self.run(store.latest_snapshot(eid))
            got = None if snap is None else (snap.seq, snap.payload)
            assert got == self.snapshots.get(eid)

    @precondition(lambda self: bool(self.journal))
    @rule()
    def reopen_durable(self) -> None:
        for store in self.durable:
            self.run(store.close())
        self.durable = self.open_durable()

    @invariant()
    def last_seqs_agree(self) -> None:
        for eid, rows in self.journal.items():
            for store in self.durable:
                got = self.run(store.read(eid, max(len(rows), 1)))
                assert [r.seq for r in got] == ([len(rows)] if rows else [])

    def teardown(self) -> None:
        try:
            for eid, rows in self.journal.items():
                for store in self.durable:
                    full = self.run(store.read(eid))
                    assert [(r.type, r.payload) for r in full] == rows
        finally:
            for store in (*self.durable, self.memory):
                self.run(store.close())
            self.runner.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.schema is not None:
                self.schema.drop()


StoreMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_stores_agree_with_the_model = StoreMachine.TestCase
