"""SQLite-only behaviour: durability across reopen, corruption and gaps (I7), migrations,
read-only stores, writer failures, and storage URLs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from tether.persistence import (
    IndexUpdate,
    JournalCorruption,
    MemoryStore,
    NewRecord,
    SchemaTooNew,
    SequenceConflict,
    SnapshotCorruption,
    SqliteStore,
    StorageError,
    Turn,
    open_store,
)
from tether.persistence.sqlite.schema import LATEST_VERSION, MIGRATIONS
from tether.persistence.sqlite.settings import (
    SYNCHRONOUS_FULL,
    SYNCHRONOUS_NORMAL,
    ConnectionSettings,
)

pytestmark = pytest.mark.anyio


def turn(eid: str, seq: int, *payloads: bytes, snapshot: bytes | None = None,
         index: IndexUpdate | None = None) -> Turn:  # fmt: skip
    records = tuple(NewRecord("step", p) for p in payloads) or (NewRecord("step", b"x"),)
    return Turn(eid, seq, records, snapshot=snapshot, index=index)


def running(at: int = 1) -> IndexUpdate:
    return IndexUpdate("running", at, workflow_id="wf", workflow_version="1", created_at_ms=at)


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL with the stdlib driver, behind the store's back."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_acknowledged_turns_survive_reopen(tmp_path: Path, durability: str) -> None:
    db = tmp_path / "d.db"
    async with SqliteStore(db, durability=durability) as store:  # type: ignore[arg-type]
        for i in range(5):
            await store.append(turn("e1", i + 1, f"p{i}".encode(), index=running()))
        await store.append(turn("e2", 1, b"a", b"b", snapshot=b"snap"))
        await store.put_workflow("wf", "1", b"ir", 3)
    assert not (tmp_path / "d.db-wal").exists() or (tmp_path / "d.db-wal").stat().st_size == 0
    async with SqliteStore(db, durability=durability) as store:  # type: ignore[arg-type]
        assert [r.payload for r in await store.read("e1")] == [b"p0", b"p1", b"p2", b"p3", b"p4"]
        snap = await store.latest_snapshot("e2")
        assert snap is not None and (snap.seq, snap.payload) == (2, b"snap")
        row = await store.get_execution("e1")
        assert row is not None and row.last_seq == 5
        assert (await store.get_workflow("wf")) is not None
        # The writer reloads the last seq of executions it has not seen in this process.
        with pytest.raises(SequenceConflict):
            await store.append(turn("e1", 5))
        assert await store.append(turn("e1", 6)) == 6


@pytest.mark.parametrize(
    ("durability", "synchronous"), [("full", SYNCHRONOUS_FULL), ("normal", SYNCHRONOUS_NORMAL)]
)
async def test_durability_is_what_the_live_connections_are_set_to_I6(
    tmp_path: Path, durability: str, synchronous: int
) -> None:
    # Read back from the connections the store really writes and reads with: a writer that
    # never syncs (or syncs less than asked) passes every other test, since nothing here
    # loses power.
    db = tmp_path / "d.db"
    async with SqliteStore(db, durability=durability) as store:  # type: ignore[arg-type]
        await store.append(turn("e1", 1, b"x"))  # settings hold after a commit, too
        settings = await store.connection_settings()
        assert settings["writer"] == ConnectionSettings("wal", synchronous, query_only=False)
        # The reader is a connection of its own, on the same WAL file, that cannot write.
        assert settings["reader"].journal_mode == "wal"
        assert settings["reader"].query_only
    async with SqliteStore(db, readonly=True) as inspector:
        assert set(await inspector.connection_settings()) == {"reader"}


async def test_flipped_payload_byte_is_caught_I7(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    marker = b"MARKER-0123456789-PAYLOAD"
    async with SqliteStore(db) as store:
        await store.append(turn("victim", 1, b"fine"))
        await store.append(turn("victim", 2, marker))
        await store.append(turn("bystander", 1, b"also fine"))
    data = bytearray(db.read_bytes())
    at = data.find(marker)
    assert at >= 0 and data.find(marker, at + 1) == -1, "payload should be in the file once"
    data[at + 7] ^= 0x01
    db.write_bytes(bytes(data))
    async with SqliteStore(db) as store:
        with pytest.raises(JournalCorruption) as info:
            await store.read("victim")
        assert (info.value.execution_id, info.value.seq) == ("victim", 2)
        assert "victim" in str(info.value) and "row 2 failed its checksum" in str(info.value)
        # Reading from after the bad row (as after a snapshot) still works.
        assert await store.read("victim", from_seq=3) == []
        assert [r.payload for r in await store.read("bystander")] == [b"also fine"]
    # The row is left in place for inspection.
    assert raw(db, "SELECT count(*) FROM journal WHERE execution_id = 'victim'") == [(2,)]


async def test_flipped_snapshot_byte_is_caught_I7(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    marker = b"SNAPSHOT-MARKER-abcdefghij"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, b"r", snapshot=marker))
    data = bytearray(db.read_bytes())
    data[data.find(marker) + 3] ^= 0x20
    db.write_bytes(bytes(data))
    async with SqliteStore(db) as store:
        with pytest.raises(SnapshotCorruption, match="snapshot at seq 1 failed its checksum"):
            await store.latest_snapshot("e1")
        assert len(await store.read("e1")) == 1


async def test_deleted_rows_are_gaps_I7(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with SqliteStore(db) as store:
        await store.append(turn("mid", 1, b"1", b"2", b"3"))
        await store.append(turn("tail", 1, b"1", b"2", b"3", index=running()))
        await store.append(turn("first", 1, b"1", b"2"))
    raw(db, "DELETE FROM journal WHERE execution_id = 'mid' AND seq = 2")
    raw(db, "DELETE FROM journal WHERE execution_id = 'tail' AND seq = 3")
    raw(db, "DELETE FROM journal WHERE execution_id = 'first' AND seq = 1")
    async with SqliteStore(db) as store:
        for eid, missing in (("mid", 2), ("tail", 3), ("first", 1)):
            with pytest.raises(JournalCorruption, match="is missing") as info:
                await store.read(eid)
            assert (info.value.execution_id, info.value.seq) == (eid, missing)
        # Reading after a snapshot starts later; rows before from_seq are not required.
        assert [r.seq for r in await store.read("first", from_seq=2)] == [2]


async def test_load_executions_leaves_out_what_does_not_verify_I7(tmp_path: Path) -> None:
    """Recovery's bulk read never hands over a bad journal: it leaves that execution out, so
    its own read (one at a time) reports the problem; the others load."""
    db = tmp_path / "l.db"
    marker, snap_marker = b"BULK-MARKER-0123456789", b"BULK-SNAPSHOT-MARKER-987"
    async with SqliteStore(db) as store:
        await store.append(turn("flipped", 1, b"fine", marker, index=running()))
        await store.append(turn("gap", 1, b"1", b"2", b"3", index=running()))
        await store.append(turn("bad-snap", 1, b"r", snapshot=snap_marker, index=running()))
        await store.append(turn("tail", 1, b"1", b"2", index=running()))
        await store.append(turn("fine", 1, b"1", index=running()))
    data = bytearray(db.read_bytes())
    data[data.find(marker) + 5] ^= 0x01
    data[data.find(snap_marker) + 5] ^= 0x01
    db.write_bytes(bytes(data))
    raw(db, "DELETE FROM journal WHERE execution_id = 'gap' AND seq = 2")
    raw(db, "DELETE FROM journal WHERE execution_id = 'tail' AND seq = 2")
    async with SqliteStore(db) as store:
        loaded = await store.load_executions(["flipped", "gap", "bad-snap", "tail", "fine"])
        assert sorted(loaded) == ["fine"]
        assert [r.payload for r in loaded["fine"].records] == [b"1"]
        with pytest.raises(JournalCorruption):
            await store.read("tail")


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    async with SqliteStore(db):
        pass
    versions = [v for (v,) in raw(db, "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _ in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


async def test_older_database_is_migrated_forward(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY);"
        f"{MIGRATIONS[0][1]}; INSERT INTO schema_migrations VALUES (1);"
    )
    conn.close()
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, index=running()))
        assert (await store.get_execution("e1")) is not None
    assert raw(db, "SELECT max(version) FROM schema_migrations") == [(LATEST_VERSION,)]


async def test_database_from_the_future_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    async with SqliteStore(db):
        pass
    raw(db, "INSERT INTO schema_migrations (version) VALUES (999)")
    with pytest.raises(SchemaTooNew, match=r"version 999.*upgrade Tether") as info:
        await SqliteStore(db).open()
    assert str(db) in str(info.value)
    with pytest.raises(SchemaTooNew):
        await SqliteStore(db, readonly=True).open()
    # The refused open released its lock.
    raw(db, "DELETE FROM schema_migrations WHERE version = 999")
    async with SqliteStore(db):
        pass


async def test_readonly_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    async with SqliteStore(db) as writer:
        await writer.append(turn("e1", 1, b"a"))
        # A read-only store takes no lock: it opens next to the running writer.
        async with SqliteStore(db, readonly=True) as reader:
            assert [r.payload for r in await reader.read("e1")] == [b"a"]
            with pytest.raises(StorageError, match="read-only"):
                await reader.append(turn("e1", 2))
            with pytest.raises(StorageError, match="read-only"):
                await reader.put_workflow("wf", "1", b"ir", 1)
    with pytest.raises(StorageError, match="no such database"):
        await SqliteStore(tmp_path / "absent.db", readonly=True).open()


async def test_memory_readonly_refuses_writes() -> None:
    store = MemoryStore(readonly=True)
    await store.open()
    with pytest.raises(StorageError, match="read-only"):
        await store.append(turn("e1", 1))


async def test_a_failing_statement_fails_only_its_turn(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    async with SqliteStore(db):
        pass
    # A trigger that rejects one payload makes the batch transaction fail as a real constraint
    # would; the writer must retry turn by turn so only that turn fails.
    raw(db, "CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW.payload = x'BAD0'"
            " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")  # fmt: skip
    async with SqliteStore(db) as store:
        outcomes: dict[str, object] = {}

        async def attempt(eid: str, t: Turn) -> None:
            try:
                outcomes[eid] = await store.append(t)
            except StorageError as exc:
                outcomes[eid] = exc

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(attempt, f"e{i}", turn(f"e{i}", 1, b"\xba\xd0" if i == 3 else b"ok"))
        failure = outcomes.pop("e3")
        assert isinstance(failure, StorageError) and not isinstance(failure, SequenceConflict)
        assert "e3" in str(failure) and "poisoned row" in str(failure)
        assert all(v == 1 for v in outcomes.values())
        assert await store.read("e3") == []
        # The writer's sequence cache did not move for the failed turn.
        assert await store.append(turn("e3", 1, b"fine now")) == 1


async def test_disk_full_fails_appends_without_hanging(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    async with SqliteStore(db) as store:
        await store.append(turn("e1", 1, b"small"))
        conn = store._writer_conn  # white-box: cap the file size to provoke SQLITE_FULL
        assert conn is not None
        pages = next(iter(await conn.execute_fetchall("PRAGMA page_count")))[0]
        await conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError, match="full"):
            await store.append(turn("e1", 2, os.urandom(64 * 1024)))
        await conn.execute("PRAGMA max_page_count = 1073741823")
        assert await store.append(turn("e1", 2, b"after")) == 2
        assert [r.payload for r in await store.read("e1")] == [b"small", b"after"]


async def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = await open_store("sqlite:///nested/dir/rel.db")
    assert isinstance(rel, SqliteStore) and (tmp_path / "nested/dir/rel.db").exists()
    await rel.close()
    absolute = await open_store(f"sqlite:///{tmp_path}/abs/a.db", durability="normal")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs/a.db"
    assert absolute.durability == "normal"
    await absolute.close()
    mem = await open_store("memory://")
    assert isinstance(mem, MemoryStore)
    await mem.close()
    for bad in ("mysql://x", "sqlite://rel.db", "sqlite:///", "sqlite:///dir/", "memory"):
        with pytest.raises(ValueError, match="bad storage URL"):
            await open_store(bad)
