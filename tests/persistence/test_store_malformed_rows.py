"""A row whose columns hold the wrong kind of value is corruption, never a raw error (I7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tether.persistence import (
    IndexUpdate,
    JournalCorruption,
    NewRecord,
    SnapshotCorruption,
    SqliteStore,
    Turn,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE journal SET payload = 'rewritten as text' WHERE seq = 2", "failed its checksum"),
        ("UPDATE journal SET payload = CAST(x'ff00fe' AS TEXT) WHERE seq = 2", "row 2"),
        ("UPDATE journal SET checksum = 'x' WHERE seq = 2", "wrong type"),
    ],
)
async def test_a_malformed_column_is_reported_as_corruption_I7(
    tmp_path: Path, sql: str, problem: str
) -> None:
    db = tmp_path / "t.db"
    store = SqliteStore(db)
    await store.open()
    await store.append(
        Turn(
            "e1",
            1,
            (NewRecord("a", b"one"), NewRecord("b", b"two")),
            index=IndexUpdate(status="running", updated_at_ms=1),
        )
    )
    await store.append(Turn("e2", 1, (NewRecord("a", b"fine"),)))
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    store = SqliteStore(db)
    await store.open()
    try:
        with pytest.raises(JournalCorruption, match=problem):
            await store.read("e1")
        assert [r.payload for r in await store.read("e2")] == [b"fine"]
    finally:
        await store.close()


async def test_a_snapshot_column_of_the_wrong_kind_is_snapshot_corruption_I7(
    tmp_path: Path,
) -> None:
    # Found in review: read() cast the payload column, latest_snapshot() did not, so a text
    # payload surfaced as a raw TypeError instead of the corruption the runtime falls back on.
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    await store.open()
    await store.append(Turn("e1", 1, (NewRecord("a", b"one"),), snapshot=b"state"))
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE snapshots SET payload = 'text now'")
    store = SqliteStore(db)
    await store.open()
    try:
        with pytest.raises(SnapshotCorruption):
            await store.latest_snapshot("e1")
        assert [r.payload for r in await store.read("e1")] == [b"one"]  # the journal is intact
    finally:
        await store.close()
