"""The artifact table, the same on every backend (memory, SQLite, Postgres): content-addressed
by SHA-256, written once (a second put moves only ``touched_at_ms``), verified on read (a
corrupt artifact is an error, never returned), found through the journal rows and snapshots
that reference it, and removed only when old enough, checked in the DELETE itself (I9).
On SQLite it is migration 10, applied to a journal created before it."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from tether.persistence import MemoryStore, SqliteStore, Store
from tether.persistence.artifacts import ArtifactCorruption, ArtifactStore
from tether.persistence.artifacts.spill import REF_MARKER
from tether.persistence.contract import IndexUpdate, NewRecord, Turn
from tether.persistence.sqlite import schema

pytestmark = pytest.mark.anyio


def artifacts(store: Store) -> ArtifactStore:
    assert isinstance(store, ArtifactStore)
    return store


async def test_an_artifact_is_kept_under_its_sha256_once_and_read_back(store: Store) -> None:
    a = artifacts(store)
    data = b"a large value " * 1000
    [digest] = await a.put_artifacts([data], at_ms=10)
    assert digest == hashlib.sha256(data).hexdigest()
    assert await a.get_artifact(digest) == data
    assert await a.get_artifact(f"sha256:{digest}") == data
    again = await a.put_artifacts([data, b"other"], at_ms=20)  # dedup: the same digest
    assert again[0] == digest
    [info, _] = sorted(await a.list_artifacts(), key=lambda i: i.digest != digest)
    assert (info.digest, info.size, info.created_at_ms, info.touched_at_ms) == (
        digest, len(data), 10, 20)  # fmt: skip
    await a.put_artifacts([data], at_ms=5)  # an older put never moves it back
    assert {i.digest: i.touched_at_ms for i in await a.list_artifacts()}[digest] == 20
    assert await a.put_artifacts([], at_ms=1) == []


async def test_unknown_and_malformed_digests(store: Store) -> None:
    a = artifacts(store)
    assert await a.get_artifact("0" * 64) is None
    for bad in ("", "abc", "G" * 64, "A" * 64, "sha256:" + "0" * 63, "md5:" + "0" * 64):
        with pytest.raises(ValueError, match="not an artifact digest"):
            await a.get_artifact(bad)
    with pytest.raises(ValueError, match="an artifact is bytes"):
        await a.put_artifacts(["text"], at_ms=1)  # type: ignore[list-item]
    assert await a.list_artifacts() == []


async def test_a_corrupt_artifact_is_an_error_never_returned_I9(
    store: Store, request: pytest.FixtureRequest
) -> None:
    a = artifacts(store)
    [digest] = await a.put_artifacts([b"the true bytes"], at_ms=1)
    corrupt(store, digest, b"other bytes")
    with pytest.raises(ArtifactCorruption, match=f"sha256:{digest} failed its check"):
        await a.get_artifact(digest)
    # A put of the true bytes again does not overwrite what is there (never overwritten).
    await a.put_artifacts([b"the true bytes"], at_ms=2)
    with pytest.raises(ArtifactCorruption):
        await a.get_artifact(digest)


def corrupt(store: Store, digest: str, data: bytes) -> None:
    """Replace an artifact's bytes behind the store's back."""
    if isinstance(store, MemoryStore):
        store.artifacts[digest] = (data, store.artifacts[digest][1])
    elif isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE artifacts SET data = ? WHERE digest = ?", (data, digest))
    else:
        import psycopg

        url: str = cast(Any, store).url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE tether_artifacts SET data = %s WHERE digest = %s", (data, digest))


async def test_references_are_read_from_journal_rows_and_snapshots(store: Store) -> None:
    a = artifacts(store)
    index = IndexUpdate("running", 1, workflow_id="wf", workflow_version="1", created_at_ms=1)
    in_row = b"\x81\xa1x" + REF_MARKER + b"r" * 32
    in_snapshot = b"\x03" + REF_MARKER + b"s" * 32
    await store.append(Turn("e1", 1, (NewRecord("a", b"plain"), NewRecord("b", in_row)),
                            snapshot=in_snapshot, index=index))  # fmt: skip
    await store.append(Turn("e2", 1, (NewRecord("a", b"nothing here"),), index=index))
    assert sorted(await a.artifact_references(REF_MARKER)) == sorted([in_row, in_snapshot])


async def test_a_delete_removes_only_what_was_last_put_before_the_cutoff(store: Store) -> None:
    a = artifacts(store)
    old, young = await a.put_artifacts([b"old", b"young"], at_ms=100)
    await a.put_artifacts([b"young"], at_ms=500)  # put again since: it counts from then
    assert await a.delete_artifacts([old, young, "f" * 64], touched_before_ms=400) == [old]
    assert await a.get_artifact(old) is None
    assert await a.get_artifact(young) == b"young"
    assert await a.delete_artifacts([], touched_before_ms=10_000) == []


async def test_migration_10_adds_artifacts_to_a_journal_made_before_it(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(schema, "MIGRATIONS", tuple(v for v in schema.MIGRATIONS if v[0] < 10))
        m.setattr(schema, "LATEST_VERSION", 9)
        async with SqliteStore(db):
            pass
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "artifacts" not in tables
    async with SqliteStore(db) as store:
        [digest] = await store.put_artifacts([b"kept"], at_ms=1)
        assert await store.get_artifact(digest) == b"kept"
