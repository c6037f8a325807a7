"""A run whose journal cannot be written is started again from its journal: for as long as it
takes when the storage's trouble passes (a full disk: tests/persistence/test_full_disk.py),
and only a few times in a row when the same write would fail on every try (issue 19: such a
run was started again every five seconds forever)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import psycopg.errors
import pytest

from tether import Runtime
from tether.errors import ExecutionBroken
from tether.ir import compile_yaml_text
from tether.persistence.contract import StorageError
from tether.persistence.storage_faults import storage_unavailable
from tether.runtime.storage_revival import LASTING_TRIES, MAX_WAIT_SECS, StorageRevival
from tether.testing import VirtualClock

pytestmark = pytest.mark.anyio


def _full_database_error(tmp_path: Path) -> sqlite3.Error:
    conn = sqlite3.connect(tmp_path / "small.db")
    conn.execute("CREATE TABLE t (v BLOB)")
    conn.execute("PRAGMA max_page_count = 8")  # a database that cannot grow: SQLITE_FULL
    try:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 4096,))
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("the capped database took every row")


def _refused_insert_error(tmp_path: Path) -> sqlite3.Error:
    conn = sqlite3.connect(tmp_path / "refusing.db")
    conn.executescript(
        "CREATE TABLE t (v INTEGER);"
        "CREATE TRIGGER no BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, 'refused'); END;"
    )
    try:
        conn.execute("INSERT INTO t VALUES (1)")
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("the trigger did not refuse")


def test_the_storages_passing_trouble_is_told_from_a_lasting_refusal(tmp_path: Path) -> None:
    full = _full_database_error(tmp_path)
    assert "full" in str(full)
    assert storage_unavailable(full)
    assert storage_unavailable(OSError(28, "No space left on device"))
    assert storage_unavailable(psycopg.errors.DiskFull("could not extend file"))
    assert storage_unavailable(psycopg.errors.AdminShutdown("terminating connection"))
    wrapped = StorageError("write failed")
    wrapped.__cause__ = full
    assert storage_unavailable(wrapped)
    assert not storage_unavailable(_refused_insert_error(tmp_path))
    assert not storage_unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not storage_unavailable(ValueError("not a storage error at all"))


async def _revivals_until_broken(error: StorageError, most: int) -> tuple[int, list[str]]:
    """Revive one execution after ``error`` again and again, as its failing actor would."""
    clock = VirtualClock()
    broken: list[str] = []
    spawned = 0

    async def spawn(execution_id: str) -> None:
        nonlocal spawned
        spawned += 1

    revival = StorageRevival(clock, spawn, lambda eid, why: broken.append(why))
    for _ in range(most):
        async with anyio.create_task_group() as tg:
            tg.start_soon(revival.revive, "e1", error)
            await anyio.wait_all_tasks_blocked()
            clock.advance(MAX_WAIT_SECS)
        if broken:
            break
    return spawned, broken


async def test_a_lasting_failure_to_write_breaks_the_run_after_a_few_revivals() -> None:
    spawned, broken = await _revivals_until_broken(StorageError("refused"), most=50)
    assert spawned == LASTING_TRIES
    assert broken == [f"its journal could not be written in {LASTING_TRIES + 1} tries: refused"]


async def test_a_full_disk_revives_the_run_for_as_long_as_it_takes() -> None:
    full = StorageError("database or disk is full", transient=True)
    spawned, broken = await _revivals_until_broken(full, most=50)
    assert (spawned, broken) == (50, [])


async def test_a_turn_the_database_always_refuses_ends_the_run_broken_with_the_cause(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runtime.db"
    clock = VirtualClock()
    wf = compile_yaml_text(
        "workflow: {id: refused, version: '1'}\n"
        "nodes:\n  pause: {type: wait, duration: 1h, next: end}\n",
        "refused.yaml",
    )
    async with Runtime(f"sqlite:///{db}", clock=clock) as rt:
        # The database itself refuses the timer's turn, on every try (a real SQLite failure
        # of the turn's transaction, as a lasting one would be).
        with sqlite3.connect(db) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON journal"
                " WHEN NEW.type = 'wait_completed'"
                " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        run = await rt.start(rt.register(wf))
        with anyio.fail_after(60):  # real seconds: a guard, never reached when it works
            async with anyio.create_task_group() as tg:

                async def drive_the_clock() -> None:
                    while True:  # to the timer, each restart, each revival: once all wait
                        await anyio.wait_all_tasks_blocked()
                        clock.advance_to_next()

                tg.start_soon(drive_the_clock)
                with pytest.raises(ExecutionBroken, match="refused by the test") as caught:
                    await run.result()
                tg.cancel_scope.cancel()
        assert f"in {LASTING_TRIES + 1} tries" in str(caught.value)
        types = [e.type for e in await rt.journal(run.id)]
        assert "wait_completed" not in types
