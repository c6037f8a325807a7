"""The schedules table (cron), run against both backends (memory, SQLite file); then what only
SQLite has: reopen, migration from schema 5, the table's own checks, read-only refusal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import msgspec
import pytest

from tether.persistence import (
    ScheduleRow,
    SqliteStore,
    StorageError,
    Store,
)
from tether.persistence.sqlite import schema

pytestmark = pytest.mark.anyio


def sched(sid: str = "daily", next_fire: int = 1_000, **kw: object) -> ScheduleRow:
    fields: dict[str, object] = dict(
        schedule_id=sid, cron="0 9 * * *", timezone="Europe/Paris", workflow_id="report",
        workflow_version="1", input=msgspec.msgpack.encode({"n": 1}), missed="skip",
        paused=False, next_fire_ms=next_fire, created_at_ms=10, updated_at_ms=10,
    )  # fmt: skip
    fields.update(kw)
    return ScheduleRow(**fields)  # type: ignore[arg-type]


async def test_put_get_list_and_replace(store: Store) -> None:
    assert await store.get_schedule("daily") is None
    assert await store.list_schedules() == []
    b, a = sched("b"), sched("a", paused=True, last_error="boom")
    await store.put_schedule(b)
    await store.put_schedule(a)
    assert await store.get_schedule("a") == a
    assert await store.list_schedules() == [a, b]  # by id
    # Replace: every field is the new row's, created_at included (the caller keeps it).
    a2 = sched("a", cron="*/5 * * * *", timezone="UTC", workflow_version="2", missed="run_once",
               next_fire=5, input=b"\x80", created_at_ms=3, updated_at_ms=20)  # fmt: skip
    await store.put_schedule(a2)
    assert await store.get_schedule("a") == a2
    assert await store.list_schedules() == [a2, b]


async def test_malformed_rows_are_refused_and_nothing_is_written(store: Store) -> None:
    for bad, what in (
        (sched(""), "schedule id"),
        (sched("x", missed="sometimes"), "missed policy"),
        (sched("x", workflow_id=""), "workflow id"),
        (sched("x", cron=""), "cron"),
        (sched("x\x00y"), "NUL"),
    ):
        with pytest.raises(StorageError, match=what):
            await store.put_schedule(bad)
    assert await store.list_schedules() == []


async def test_delete_says_whether_there_was_one(store: Store) -> None:
    await store.put_schedule(sched("a"))
    assert await store.delete_schedule("a") is True
    assert await store.delete_schedule("a") is False
    assert await store.get_schedule("a") is None


async def test_pause_and_resume(store: Store) -> None:
    await store.put_schedule(sched("a", next_fire=1_000))
    paused = await store.set_schedule_paused("a", True, at_ms=50)
    assert paused == sched("a", next_fire=1_000, paused=True, updated_at_ms=50)
    assert await store.get_schedule("a") == paused
    resumed = await store.set_schedule_paused("a", False, at_ms=40, next_fire_ms=9_000)
    # updated_at never goes back; the next fire is replaced when one is given.
    assert resumed == sched("a", next_fire=9_000, paused=False, updated_at_ms=50)
    assert await store.set_schedule_paused("nope", True, at_ms=1) is None


async def test_advance_is_a_compare_and_set(store: Store) -> None:
    await store.put_schedule(sched("a", next_fire=1_000, last_error="old"))
    assert await store.advance_schedule("a", 1_000, 2_000, at_ms=1_000) is True
    row = await store.get_schedule("a")
    assert row is not None
    assert (row.next_fire_ms, row.last_error, row.updated_at_ms) == (2_000, None, 1_000)
    # The same fire again (a restart, a second engine): refused, nothing changes.
    assert await store.advance_schedule("a", 1_000, 3_000, at_ms=1_100) is False
    assert await store.get_schedule("a") == row
    assert await store.advance_schedule("a", 2_000, 3_000, 2_000, last_error="gone") is True
    row = await store.get_schedule("a")
    assert row is not None and (row.next_fire_ms, row.last_error) == (3_000, "gone")
    assert await store.advance_schedule("nope", 1, 2, 3) is False


async def test_concurrent_advances_of_one_fire_one_wins(store: Store) -> None:
    await store.put_schedule(sched("a", next_fire=1_000))
    results: list[bool] = []

    async def advance(to: int) -> None:
        results.append(await store.advance_schedule("a", 1_000, to, at_ms=1_000))

    async with anyio.create_task_group() as tg:
        for to in range(2_000, 2_010):
            tg.start_soon(advance, to)
    assert sorted(results) == [False] * 9 + [True]
    row = await store.get_schedule("a")
    assert row is not None and 2_000 <= row.next_fire_ms < 2_010


async def test_set_error(store: Store) -> None:
    await store.put_schedule(sched("a"))
    assert await store.set_schedule_error("a", "workflow report@1 is gone", at_ms=70) is True
    assert await store.get_schedule("a") == sched("a", last_error="workflow report@1 is gone",
                                                  updated_at_ms=70)  # fmt: skip
    assert await store.set_schedule_error("a", None, at_ms=80) is True
    row = await store.get_schedule("a")
    assert row is not None and row.last_error is None
    assert await store.set_schedule_error("nope", "x", at_ms=1) is False


# ------------------------------------------------------------------------------ SQLite only


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


async def test_schedules_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with SqliteStore(db) as store:
        await store.put_schedule(sched("a", paused=True))
        await store.put_schedule(sched("b"))
        await store.advance_schedule("b", 1_000, 2_000, 5, last_error="x")
        before = await store.list_schedules()
    async with SqliteStore(db) as store:
        assert await store.list_schedules() == before
        assert [r.paused for r in before] == [True, False]


async def test_database_at_schema_5_is_migrated_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "v5.db"
    with monkeypatch.context() as m:  # the release before schedules: migrations 1 to 5
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
        m.setattr(schema, "LATEST_VERSION", 5)
        async with SqliteStore(db) as old:
            await old.put_workflow("wf", "1", b"ir", 1)
    assert raw(db, "SELECT name FROM sqlite_master WHERE name = 'schedules'") == []
    async with SqliteStore(db) as store:
        assert await store.get_workflow("wf") is not None
        await store.put_schedule(sched("a"))
        assert await store.get_schedule("a") == sched("a")
    assert raw(db, "SELECT max(version) FROM schema_migrations") == [(schema.LATEST_VERSION,)]


async def test_the_table_refuses_an_unknown_policy_whatever_the_writer_says(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    async with SqliteStore(db):
        pass
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw(db, "INSERT INTO schedules VALUES ('x', '* * * * *', 'UTC', 'w', '1', x'80',"
                " 'twice', 0, 0, 0, 0, NULL)")  # fmt: skip


async def test_a_read_only_store_lists_but_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    async with SqliteStore(db) as store:
        await store.put_schedule(sched("a"))
        async with SqliteStore(db, readonly=True) as ro:
            assert await ro.list_schedules() == [sched("a")]
            with pytest.raises(StorageError, match="read-only"):
                await ro.advance_schedule("a", 1_000, 2_000, 1)
            with pytest.raises(StorageError, match="read-only"):
                await ro.put_schedule(sched("b"))
