"""The facts table of durable memory, the same on every backend (memory, SQLite, Postgres):
a fact is written once per (scope, fact_id), so a retried write changes nothing; a scope reads
its own facts only, oldest first; a bad row is refused with a one-line error and nothing is
written. On SQLite it is migration 9, applied to a journal created before it."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.agents.memory.api import fact_of
from tether.agents.memory.facts import current_facts
from tether.persistence import SqliteStore, Store
from tether.persistence.facts import FactRow, FactStore
from tether.persistence.sqlite import schema

pytestmark = pytest.mark.anyio


def _row(fact_id: str, scope: str = "u1", subject: str = "location", at_ms: int = 1) -> FactRow:
    return FactRow(fact_id, scope, subject, f"content of {fact_id}", "run-1", at_ms)


async def test_a_fact_is_written_once_and_read_by_its_scope_only(store: Store) -> None:
    assert isinstance(store, FactStore)
    assert await store.write_fact(_row("f2", at_ms=2))
    assert await store.write_fact(_row("f1", at_ms=1))
    assert await store.write_fact(_row("f1", scope="u2"))  # the same id in another scope
    retried = FactRow("f1", "u1", "location", "something else", "run-9", 9)
    assert not await store.write_fact(retried)
    mine = await store.read_facts("u1")
    assert [r.fact_id for r in mine] == ["f1", "f2"]
    assert dataclasses.replace(mine[0], written=0) == _row("f1", at_ms=1)  # the first stands
    assert [r.scope for r in await store.read_facts("u2")] == ["u2"]
    assert await store.read_facts("nobody") == []


async def test_facts_of_one_millisecond_read_in_the_order_they_were_written(store: Store) -> None:
    """Ids say nothing about order: the later write of two in one millisecond is the current
    one (it was the earlier id, ordered by id, that came out current before)."""
    assert isinstance(store, FactStore)
    for fact_id in ("zz", "mm", "aa"):
        assert await store.write_fact(_row(fact_id, at_ms=5))
    rows = await store.read_facts("u1")
    assert [r.fact_id for r in rows] == ["zz", "mm", "aa"]
    assert rows[0].written < rows[1].written < rows[2].written
    assert [f.fact_id for f in current_facts(fact_of(r) for r in rows)] == ["aa"]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (FactRow("", "u1", "s", "c", "r", 1), "fact_id must be a non-empty string"),
        (FactRow("f", " ", "s", "c", "r", 1), "scope must be a non-empty string"),
        (FactRow("f", "u1", "s", "c", "r", -1), "at_ms must be a non-negative integer"),
        (FactRow("f", "u1", "x" * 600, "c", "r", 1), "subject is 600 characters"),
    ],
)
async def test_a_bad_fact_is_refused_and_nothing_is_written(
    store: Store, row: FactRow, error: str
) -> None:
    assert isinstance(store, FactStore)
    with pytest.raises(ValueError, match=error):
        await store.write_fact(row)
    assert await store.read_facts(row.scope) == []


async def test_migration_9_adds_the_facts_to_a_journal_made_before_it(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(schema, "MIGRATIONS", tuple(v for v in schema.MIGRATIONS if v[0] < 9))
        m.setattr(schema, "LATEST_VERSION", 7)
        async with SqliteStore(db):
            pass
    assert _tables(db) & {"memory_facts"} == set()
    async with SqliteStore(db) as store:
        assert await store.write_fact(_row("f1"))
        assert [r.fact_id for r in await store.read_facts("u1")] == ["f1"]


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["f1", "f2", "f3"]), st.sampled_from(["u1", "u2"])),
        max_size=12,
    )
)
async def test_any_sequence_of_writes_keeps_one_row_per_scope_and_id(
    tmp_path: Path, writes: list[tuple[str, str]]
) -> None:
    async with SqliteStore(tmp_path / f"p{abs(hash(tuple(writes)))}.db") as store:
        for n, (fact_id, scope) in enumerate(writes):
            await store.write_fact(_row(fact_id, scope=scope, at_ms=n))
        for scope in ("u1", "u2"):
            got = await store.read_facts(scope)
            assert sorted(r.fact_id for r in got) == sorted({f for f, s in writes if s == scope})
            assert all(r.scope == scope for r in got)
