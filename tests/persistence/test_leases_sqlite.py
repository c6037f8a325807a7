"""SQLite-only behaviour of the work-item table: reopen, migrations from schemas 3 and 12, the
table's own I5 guards, the writer's fence copy yielding to the table when they disagree, and
its writes building no ephemeral tables."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tether.persistence import (
    NewRecord,
    Settle,
    SqliteStore,
    StaleFence,
    StorageError,
    Turn,
    WorkItemRow,
)
from tether.persistence.sqlite import lease_ops, schema

pytestmark = pytest.mark.anyio


def item(wid: str, created: int = 0) -> WorkItemRow:
    eid, node, dispatch = wid.split("/")
    return WorkItemRow(wid, eid, node, "q", 1, int(dispatch), b"p", created_at_ms=created)


def turn(eid: str, seq: int, items: tuple[WorkItemRow, ...] = (),
         settles: tuple[Settle, ...] = ()) -> Turn:  # fmt: skip
    return Turn(eid, seq, (NewRecord("step", b"x"),), work_items=items, settles=settles)


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


async def test_open_items_and_fences_survive_reopen_I5(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, items=tuple(item(f"e1/n/{k}", k) for k in range(4))))
        leases = await store.grant("q", "w", now_ms=0, ttl_ms=100, limit=2)  # n/0, n/1
        await store.append(turn("e1", 2, settles=(Settle("e1/n/1", "parked", fence=1,
                                                         not_before_ms=50),)))  # fmt: skip
        await store.append(turn("e1", 3, settles=(Settle("e1/n/3", "dead"),)))
        before = await store.open_work_items()
    async with SqliteStore(db) as store:
        after = await store.open_work_items()
        assert after == before
        assert [(r.work_item_id, r.status, r.fence) for r in after] == [
            ("e1/n/0", "leased", 1), ("e1/n/1", "parked", 1), ("e1/n/2", "pending", 0),
        ]  # fmt: skip
        # The fresh writer checks fences against the table, not a lost in-memory copy.
        with pytest.raises(StaleFence):
            await store.append(turn("e1", 4, settles=(Settle("e1/n/0", "completed", fence=2),)))
        with pytest.raises(StaleFence):
            await store.heartbeat("e1/n/3", 0, 0, 10)
        assert await store.heartbeat("e1/n/0", leases[0].fence, 10, 100) == 110
        regranted = await store.grant("q", "w2", now_ms=50, ttl_ms=100, limit=5)
        assert [(x.work_item_id, x.fence) for x in regranted] == [("e1/n/2", 1), ("e1/n/1", 2)]
        await store.append(turn("e1", 4, settles=(Settle("e1/n/0", "completed", fence=1),)))


async def test_database_at_schema_3_is_migrated_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "v3.db"
    with monkeypatch.context() as m:  # the previous release: migrations 1 to 3
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
        m.setattr(schema, "LATEST_VERSION", 3)
        # audit=False: the previous release had no chain column to read or write.
        async with SqliteStore(db, audit=False) as old:
            await old.append(turn("e1", 1))
            await old.put_workflow("wf", "1", b"ir", 1)
    assert raw(db, "SELECT max(version) FROM schema_migrations") == [(3,)]
    assert raw(db, "SELECT name FROM sqlite_master WHERE name = 'work_items'") == []
    async with SqliteStore(db) as store:
        assert len(await store.read("e1")) == 1
        assert await store.get_workflow("wf") is not None
        await store.append(turn("e1", 2, items=(item("e1/n/1"),)))
        [lease] = await store.grant("q", "w", 0, 10, 1)
        assert lease.fence == 1
    assert raw(db, "SELECT max(version) FROM schema_migrations") == [(schema.LATEST_VERSION,)]
    indexes = {n for (n,) in raw(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "work_items_grantable" in indexes
    assert "work_items_expiry" not in indexes  # dropped by migration 5


async def test_the_table_refuses_what_I5_forbids(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, items=(item("e1/a/1"), item("e1/b/1"))))
        await store.grant("q", "w", 0, 10, limit=2)
        await store.append(turn("e1", 2, settles=(Settle("e1/b/1", "completed", fence=1),)))
    assert_refuses_what_I5_forbids(db, live="e1/a/1", finished="e1/b/1")


def assert_refuses_what_I5_forbids(db: Path, live: str, finished: str) -> None:
    """The table itself refuses a fence going down, a finished item changing, a bad status."""
    with pytest.raises(sqlite3.IntegrityError, match="fence would decrease"):
        raw(db, f"UPDATE work_items SET fence = 0 WHERE work_item_id = '{live}'")
    with pytest.raises(sqlite3.IntegrityError, match="finished and cannot change"):
        raw(db, f"UPDATE work_items SET status = 'pending' WHERE work_item_id = '{finished}'")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw(db, f"UPDATE work_items SET status = 'bogus' WHERE work_item_id = '{live}'")


async def test_the_table_wins_when_the_writer_copy_disagrees_I5(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, items=(item("e1/a/1"),)))
        await store.append(turn("e2", 1, items=(item("e2/a/1"),)))
        await store.grant("q", "w", 0, 100, limit=2)  # the writer remembers fence 1 for both
        # Behind the writer's back (never happens with one writer; a bug or a hand edit would).
        raw(db, "UPDATE work_items SET fence = 5 WHERE work_item_id = 'e1/a/1'")
        with pytest.raises(StaleFence) as info:
            await store.append(turn("e1", 2, settles=(Settle("e1/a/1", "completed", fence=1),)))
        assert (info.value.presented, info.value.current) == (1, 5)
        assert len(await store.read("e1")) == 1
        raw(db, "UPDATE work_items SET fence = 7 WHERE work_item_id = 'e2/a/1'")
        with pytest.raises(StaleFence) as info:
            await store.heartbeat("e2/a/1", 1, 10, 100)
        assert info.value.current == 7
        # Reloaded from the table, the item works with its real fence.
        await store.append(turn("e1", 2, settles=(Settle("e1/a/1", "completed", fence=5),)))
        assert await store.heartbeat("e2/a/1", 7, 10, 100) == 110


async def test_readonly_store_refuses_lease_writes(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, items=(item("e1/a/1"),)))
        async with SqliteStore(db, readonly=True) as reader:
            assert [r.work_item_id for r in await reader.open_work_items()] == ["e1/a/1"]
            with pytest.raises(StorageError, match="read-only"):
                await reader.grant("q", "w", 0, 10, 1)
            with pytest.raises(StorageError, match="read-only"):
                await reader.heartbeat("e1/a/1", 1, 0, 10)


async def test_presumed_new_item_that_exists_falls_back_to_a_lookup_I5(tmp_path: Path) -> None:
    """The writer does not look up the ids a batch creates (they are new by construction);
    when one exists after all, unknown to a fresh writer, the insert count says so and the
    batch is retried with lookups: the turn commits, the existing row is left as it was, and
    a settle in the same batch is still checked against the table's fence."""
    db = tmp_path / "p.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, items=(item("e1/n/1", 5),)))
        [lease] = await store.grant("q", "w", now_ms=0, ttl_ms=100, limit=1)
    async with SqliteStore(db) as store:  # a fresh writer: its fence copy is empty
        again = WorkItemRow("e1/n/1", "e1", "n", "q", 1, 1, b"other", created_at_ms=9)
        assert await store.append(turn("e1", 2, items=(again,))) == 2
        row = await store.get_work_item("e1/n/1")
        assert row is not None
        assert (row.status, row.fence, row.payload, row.created_at_ms) == ("leased", 1, b"p", 5)
        with pytest.raises(StaleFence):
            await store.append(turn("e1", 3, settles=(Settle("e1/n/1", "completed", fence=2),)))
        done = Settle("e1/n/1", "completed", fence=lease.fence)
        assert await store.append(turn("e1", 3, items=(again,), settles=(done,))) == 3
        row = await store.get_work_item("e1/n/1")
        assert row is not None and row.status == "completed"


async def test_database_at_schema_12_keeps_its_work_items_through_the_rebuild_I5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "v12.db"
    with monkeypatch.context() as m:  # the previous release: migrations 1 to 12
        m.setattr(schema, "MIGRATIONS", tuple(v for v in schema.MIGRATIONS if v[0] <= 12))
        m.setattr(schema, "LATEST_VERSION", 12)
        async with SqliteStore(db) as old:
            await old.append(turn("e1", 1, items=tuple(item(f"e1/n/{k}", k) for k in range(4))))
            await old.grant("q", "w", now_ms=0, ttl_ms=100, limit=3)  # n/0, n/1, n/2 leased
            await old.append(turn("e1", 2, settles=(
                Settle("e1/n/0", "completed", fence=1),
                Settle("e1/n/1", "parked", fence=1, not_before_ms=50),
            )))  # fmt: skip
    before = raw(db, "SELECT * FROM work_items ORDER BY work_item_id")
    assert raw(db, "SELECT max(version) FROM schema_migrations") == [(12,)]
    async with SqliteStore(db) as store:
        assert raw(db, "SELECT * FROM work_items ORDER BY work_item_id") == before
        # The fences and the grant order are the table's, as before the rebuild.
        with pytest.raises(StaleFence):
            await store.append(turn("e1", 3, settles=(Settle("e1/n/2", "completed", fence=2),)))
        regranted = await store.grant("q", "w2", now_ms=60, ttl_ms=100, limit=5)
        assert [(x.work_item_id, x.fence) for x in regranted] == [("e1/n/3", 1), ("e1/n/1", 2)]
    indexes = {n for (n,) in raw(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"work_items_grantable", "work_items_status", "work_items_execution"} <= indexes
    assert_refuses_what_I5_forbids(db, live="e1/n/2", finished="e1/n/0")


async def test_work_item_writes_build_no_ephemeral_table(tmp_path: Path) -> None:
    """SQLite runs `x IN (three or more constants)` by building a table (a zeroed page) each
    time a statement runs: on the step path, in the table's CHECK, its finished-item trigger
    or a settle, that was 12% of a fleet step's instructions."""
    db = tmp_path / "e.db"
    async with SqliteStore(db):
        pass
    conn = sqlite3.connect(db)
    try:
        for sql, params in ((lease_ops._INSERT, 16), (lease_ops._SETTLE, 6)):
            program = conn.execute(f"EXPLAIN {sql}", (None,) * params).fetchall()
            assert "OpenEphemeral" not in {op[1] for op in program}, sql
        # Trigger bodies are not in a statement's EXPLAIN: their conditions are read instead.
        for (text,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'work_items' AND sql IS NOT NULL"
        ):
            for listed in re.findall(r"\bIN\s*\(([^)]*)\)", text):
                assert listed.count(",") < 2, f"an IN list of 3 or more in: {text}"
    finally:
        conn.close()
