"""What only the Postgres store has: URLs, a real schema to corrupt (I7), migrations and their
refusal of a newer schema, the writer lock (I6), the table's own fence guards (I5), reopen.

Each test gets a fresh schema (``postgres_url`` in ../conftest.py); without a server they
skip, saying how to run them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tether.persistence import (
    DatabaseLocked,
    IndexUpdate,
    JournalCorruption,
    NewRecord,
    SchemaTooNew,
    SnapshotCorruption,
    StorageError,
    Turn,
    WorkItemRow,
    open_store,
)
from tether.persistence.urls import display_url
from tether.server.config import ConfigError, ServerConfig

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

from tether.persistence.postgres import PostgresStore, schema  # noqa: E402

pytestmark = pytest.mark.anyio


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in the test's schema, outside the store (as an operator would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def started(at: int = 1) -> IndexUpdate:
    return IndexUpdate("running", at, workflow_id="wf", workflow_version="1", created_at_ms=at)


async def three_rows(url: str, snapshot: bytes | None = None) -> None:
    """e1: three records (and ``snapshot``), e2: one record, both indexed."""
    async with PostgresStore(url) as store:
        records = tuple(NewRecord(t, t.encode()) for t in ("a", "b", "c"))
        await store.append(Turn("e1", 1, records, snapshot=snapshot, index=started()))
        await store.append(Turn("e2", 1, (NewRecord("a", b"fine"),), index=started()))


def test_display_url_leaves_the_password_out() -> None:
    assert display_url("postgresql://u:secret@db:5433/t") == "postgresql://u:***@db:5433/t"
    assert display_url("postgresql://u@db/t") == "postgresql://u@db/t"
    assert "secret" not in display_url("postgres://u:secret@[::1]/t")


def test_tether_dev_takes_a_postgres_url_from_the_environment() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"
    assert ServerConfig.from_env({"TETHER_DATABASE_URL": url}).database_url == url
    assert ServerConfig.from_env({}).database_url.startswith("sqlite:///")
    with pytest.raises(ConfigError, match="postgresql://user@host/db"):
        ServerConfig.from_env({"TETHER_STORAGE_BACKEND": "postgres"})
    with pytest.raises(ConfigError, match=r"TETHER_DATABASE_URL must be a file path.*\*\*\*"):
        env = {"TETHER_STORAGE_BACKEND": "sqlite", "TETHER_DATABASE_URL": "postgres://u:pw@h/d"}
        ServerConfig.from_env(env)


async def test_open_store_takes_both_spellings(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = await open_store(url, durability="normal")
        assert isinstance(store, PostgresStore) and store.durability == "normal"
        await store.close()


async def test_data_survives_reopen(postgres_url: str) -> None:
    await three_rows(postgres_url)
    async with PostgresStore(postgres_url) as store:
        assert [r.type for r in await store.read("e1")] == ["a", "b", "c"]
        assert await store.append(Turn("e1", 4, (NewRecord("d", b"d"),))) == 4
        row = await store.get_execution("e1")
        assert row is not None and row.last_seq == 4


@pytest.mark.parametrize(
    ("statement", "seq", "problem"),
    [
        ("UPDATE tether_journal SET payload = 'x' WHERE execution_id = 'e1' AND seq = 2",
         2, "failed its checksum"),
        ("UPDATE tether_journal SET checksum = checksum + 1 WHERE execution_id = 'e1' AND seq = 1",
         1, "failed its checksum"),
        ("DELETE FROM tether_journal WHERE execution_id = 'e1' AND seq = 2", 2, "missing"),
        ("DELETE FROM tether_journal WHERE execution_id = 'e1' AND seq = 3", 3, "missing"),
    ],
)  # fmt: skip
async def test_a_bad_row_is_corruption_never_skipped_I7(
    postgres_url: str, statement: str, seq: int, problem: str
) -> None:
    await three_rows(postgres_url)
    sql(postgres_url, statement)
    async with PostgresStore(postgres_url) as store:
        with pytest.raises(JournalCorruption, match=problem) as info:
            await store.read("e1")
        assert (info.value.execution_id, info.value.seq) == ("e1", seq)
        assert [r.payload for r in await store.read("e2")] == [b"fine"]
        # Recovery's bulk read leaves the bad one out; reading it alone reported it.
        assert sorted(await store.load_executions(["e1", "e2"])) == ["e2"]


async def test_a_bad_snapshot_is_snapshot_corruption_I7(postgres_url: str) -> None:
    await three_rows(postgres_url, snapshot=b"state")
    sql(postgres_url, "UPDATE tether_snapshots SET payload = 'other state'")
    async with PostgresStore(postgres_url) as store:
        with pytest.raises(SnapshotCorruption, match="seq 3"):
            await store.latest_snapshot("e1")
        assert len(await store.read("e1")) == 3  # the journal is intact
        assert sorted(await store.load_executions(["e1", "e2"])) == ["e2"]


async def test_two_snapshots_are_kept(postgres_url: str) -> None:
    async with PostgresStore(postgres_url) as store:
        for seq in range(1, 5):
            await store.append(Turn("e1", seq, (NewRecord("s", b"s"),), snapshot=b"%d" % seq))
    assert sql(postgres_url, "SELECT seq FROM tether_snapshots ORDER BY seq") == [(3,), (4,)]


async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    async with PostgresStore(postgres_url):
        pass
    sql(postgres_url, "INSERT INTO tether_schema_migrations (version) VALUES (%s)",
        (schema.LATEST_VERSION + 1,))  # fmt: skip
    for readonly in (False, True):
        with pytest.raises(SchemaTooNew, match=f"version {schema.LATEST_VERSION + 1}"):
            await PostgresStore(postgres_url, readonly=readonly).open()


async def test_an_older_schema_is_migrated_forward(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:  # a release before schedules (migration 5)
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        m.setattr(schema, "LATEST_VERSION", schema.MIGRATIONS[3][0])
        async with PostgresStore(postgres_url, audit=False) as old:
            await old.put_workflow("wf", "1", b"ir", 1)
    assert sql(postgres_url, "SELECT to_regclass('tether_schedules')") == [(None,)]
    with pytest.raises(StorageError, match="open it once for writing"):
        await PostgresStore(postgres_url, readonly=True).open()
    async with PostgresStore(postgres_url) as store:
        assert await store.get_workflow("wf") is not None
        assert await store.list_schedules() == []
    versions = sql(postgres_url, "SELECT version FROM tether_schema_migrations ORDER BY 1")
    assert versions == [(v,) for v, _ in schema.MIGRATIONS]


async def test_one_writer_per_schema_I6(postgres_url: str) -> None:
    async with PostgresStore(postgres_url) as first:
        await first.append(Turn("e1", 1, (NewRecord("a", b"x"),)))
        with pytest.raises(DatabaseLocked, match="already open for writing by tether pid"):
            await PostgresStore(postgres_url, lock_wait_ms=50).open()
        async with PostgresStore(postgres_url, readonly=True) as reader:
            assert len(await reader.read("e1")) == 1
            with pytest.raises(StorageError, match="read-only"):
                await reader.append(Turn("e1", 2, (NewRecord("b", b"y"),)))
    async with PostgresStore(postgres_url, lock_wait_ms=50) as second:  # the lock went
        assert await second.append(Turn("e1", 2, (NewRecord("b", b"y"),))) == 2


async def test_the_table_itself_refuses_what_I5_forbids(postgres_url: str) -> None:
    async with PostgresStore(postgres_url) as store:
        row = WorkItemRow("e1/n/1", "e1", "n", "q", 1, 1, b"p")
        await store.append(Turn("e1", 1, (NewRecord("a", b"x"),), work_items=(row,)))
        [lease] = await store.grant("q", "w", now_ms=0, ttl_ms=10, limit=1)
        assert lease.fence == 1
    with pytest.raises(psycopg.errors.RaiseException, match="fence would decrease"):
        sql(postgres_url, "UPDATE tether_work_items SET fence = 0")
    sql(postgres_url, "UPDATE tether_work_items SET status = 'completed'")
    with pytest.raises(psycopg.errors.RaiseException, match="finished and cannot change"):
        sql(postgres_url, "UPDATE tether_work_items SET status = 'pending'")
    with pytest.raises(psycopg.errors.CheckViolation):
        sql(postgres_url, "INSERT INTO tether_schedules VALUES ('x', '* * * * *', 'UTC', 'w',"
                          " '1', '\\x80', 'twice', false, 0, 0, 0, NULL)")  # fmt: skip
