"""Real processes: one writer per database file (I6), and SIGKILL loses nothing acknowledged."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import tether.persistence
from tether.persistence import DatabaseLocked, SqliteStore

pytestmark = pytest.mark.anyio

# The directory holding the `tether` package these tests import, for the child processes.
_ROOT = str(Path(tether.persistence.__file__).resolve().parents[2])


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": _ROOT}


_TRY_OPEN = textwrap.dedent(
    """
    import asyncio, sys
    from tether.persistence import DatabaseLocked, SqliteStore

    async def main():
        store = SqliteStore(sys.argv[1])
        try:
            await store.open()
        except DatabaseLocked as exc:
            print("LOCKED", exc)
            return
        await store.close()
        print("OPENED")

    asyncio.run(main())
    """
)

_APPEND_FOREVER = textwrap.dedent(
    """
    import asyncio, sys
    from tether.persistence import NewRecord, SqliteStore, Turn

    async def main():
        store = SqliteStore(sys.argv[1])
        await store.open()
        seq = 1
        while True:
            turn = Turn("victim", seq, (NewRecord("a", b"x%d" % seq), NewRecord("b", b"y")))
            seq = await store.append(turn) + 1
            print(seq - 1, flush=True)  # acknowledged: durable before this line is written

    asyncio.run(main())
    """
)


async def test_second_process_gets_database_locked_I6(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    store = SqliteStore(db)
    await store.open()
    try:
        child = await anyio.run_process(
            [sys.executable, "-c", _TRY_OPEN, str(db)], env=_child_env(), check=False
        )
        out = child.stdout.decode()
        assert child.returncode == 0, child.stderr.decode()
        assert out.startswith("LOCKED"), out
        assert str(db) in out and f"pid {os.getpid()}" in out
        # In this process too: a second store on the same file is refused.
        with pytest.raises(DatabaseLocked, match=r"locked\.db"):
            await SqliteStore(db).open()
    finally:
        await store.close()
    child = await anyio.run_process(
        [sys.executable, "-c", _TRY_OPEN, str(db)], env=_child_env(), check=False
    )
    assert child.stdout.decode().strip() == "OPENED", child.stderr.decode()


async def test_sigkill_loses_no_acknowledged_turn_I6(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    acknowledged: list[int] = []
    async with await anyio.open_process(
        [sys.executable, "-c", _APPEND_FOREVER, str(db)], env=_child_env()
    ) as proc:
        assert proc.stdout is not None
        buffer = b""
        async for chunk in proc.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            acknowledged.extend(int(line) for line in lines)
            if len(acknowledged) >= 200:
                break
        proc.kill()  # SIGKILL, mid-stream: the child is still appending
        await proc.wait()
    assert proc.returncode == -9
    assert acknowledged == list(range(2, 2 * len(acknowledged) + 1, 2))
    # The OS released the dead process's lock; everything acknowledged is there, in order.
    async with SqliteStore(db) as store:
        rows = await store.read("victim")
        assert len(rows) >= 2 * len(acknowledged)
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert rows[acknowledged[-1] - 2].payload == b"x%d" % (acknowledged[-1] - 1)
