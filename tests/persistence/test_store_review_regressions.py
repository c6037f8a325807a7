"""Regressions from review of the writer path (I6, I10)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.persistence import NewRecord, SqliteStore, StorageError, Store, Turn
from tether.persistence.contract import DatabaseLocked

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bad", ["exec_\x00nul", "exec_\ud800", ""])
async def test_an_unstorable_id_fails_alone_and_the_writer_goes_on(store: Store, bad: str) -> None:
    good = asyncio.ensure_future(store.append(Turn("e_good", 1, (NewRecord("r", b"x"),))))
    with pytest.raises(StorageError, match="execution id"):
        await store.append(Turn(bad, 1, (NewRecord("r", b"x"),)))
    assert await good == 1
    assert await store.append(Turn("e_later", 1, (NewRecord("r", b"y"),))) == 1


async def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not sqlite at all, just words " * 100)
    for readonly in (False, True):
        with pytest.raises(StorageError, match=r"notes\.txt: not a usable Tether database"):
            await SqliteStore(junk, readonly=readonly).open()


async def test_a_symlink_to_an_open_database_is_locked_too(tmp_path: Path) -> None:
    real = tmp_path / "r.db"
    link = tmp_path / "link.db"
    async with SqliteStore(real):
        link.symlink_to(real)
        with pytest.raises(DatabaseLocked):
            await SqliteStore(link).open()


async def test_a_second_close_waits_for_the_first(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    appends = [
        asyncio.ensure_future(store.append(Turn(f"e{i}", 1, (NewRecord("r", b"x"),))))
        for i in range(200)
    ]
    first = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)  # one step of the loop: the first close has begun, not finished
    assert not first.done()
    # Awaited on its own (gathered with the first, the first's wait would hide a second
    # close that returns at once): when it returns, the first's work is all done.
    await store.close()
    assert all(a.done() for a in appends)
    assert [a.result() for a in appends] == [1] * 200  # flushed, not dropped
    async with SqliteStore(tmp_path / "c.db") as again:  # the lock is free at once
        assert len(await again.read("e199")) == 1
    await first
