"""Recovery: a new Runtime on the same file resumes what the last one left unfinished."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from crash_child import CHAIN, make_step

from tether import ExecutionBroken, Runtime, tool
from tether.ir import compile_yaml_text
from tether.persistence.integrity import record_checksum
from tether.testing import check_replay

pytestmark = pytest.mark.anyio
HERE = Path(__file__).resolve().parent


def _gated_chain(gate_at: int, entered: anyio.Event, calls: Counter[int]):  # type: ignore[no-untyped-def]
    @tool(name="step")
    async def step(k: int, log: str) -> int:
        calls[k] += 1
        if k == gate_at:
            entered.set()
            await anyio.sleep_forever()
        return k

    return step


async def test_stopped_runtime_resumes_on_the_same_file_I2_I3(db_url: str) -> None:
    calls: Counter[int] = Counter()
    entered = anyio.Event()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    async with Runtime(db_url, tools=[_gated_chain(3, entered, calls)]) as rt:
        run = await rt.start(rt.register(wf), {"log": "-"})
        await entered.wait()
    async with Runtime(db_url, tools=[_gated_chain(0, anyio.Event(), calls)]) as rt:
        state = await rt.wait(run.id)
        assert state.status == "completed"
        assert state.data["s4"] == 4
        await check_replay(rt, run.id)
    assert calls == Counter({1: 1, 2: 1, 3: 2, 4: 1})


async def test_resume_from_a_snapshot_I2_I9(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    url = f"sqlite:///{db}"
    calls: Counter[int] = Counter()
    entered = anyio.Event()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    async with Runtime(url, tools=[_gated_chain(4, entered, calls)], snapshot_every=2) as rt:
        run = await rt.start(rt.register(wf), {"log": "-"})
        await entered.wait()
        snap = await rt.store.latest_snapshot(run.id)
        row = await rt.store.get_execution(run.id)
        assert snap is not None and row is not None and snap.seq > 1
        # Snapshots bound replay: fewer than snapshot_every records follow the latest one.
        assert row.last_seq - snap.seq < 2
    # Spoil the first record behind the store's back (its checksum no longer matches). A
    # recovery that starts from the snapshot never reads it; one that replays the journal
    # from the start stops this execution as broken (I7).
    first = _journal_payload(db, run.id, 1)
    _set_journal_payload(db, run.id, 1, first[:-1] + bytes([first[-1] ^ 0x01]))
    async with Runtime(url, tools=[_gated_chain(0, anyio.Event(), calls)], snapshot_every=2) as rt:
        assert (await rt.wait(run.id)).status == "completed"
        assert rt.broken() == {}
        # Put the record back: the whole journal, replayed, still gives the live state.
        _set_journal_payload(db, run.id, 1, first)
        await check_replay(rt, run.id)
    assert calls[1] == calls[2] == calls[3] == 1


def _journal_payload(db: Path, execution_id: str, seq: int) -> bytes:
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM journal WHERE execution_id = ? AND seq = ?", (execution_id, seq)
        ).fetchone()
    return bytes(payload)


def _set_journal_payload(db: Path, execution_id: str, seq: int, payload: bytes) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "UPDATE journal SET payload = ? WHERE execution_id = ? AND seq = ?",
                (payload, execution_id, seq),
            )
    finally:
        conn.close()


async def test_a_corrupt_row_stops_that_execution_only_I7(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    url = f"sqlite:///{db}"
    entered = anyio.Event()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    async with Runtime(url, tools=[_gated_chain(2, entered, Counter())]) as rt:
        bad = await rt.start(rt.register(wf), {"log": "-"})
        await entered.wait()
        good = await rt.start(wf, {"log": "-"})
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM journal WHERE execution_id = ? AND seq = 1", (bad.id,)
        ).fetchone()
    raw = bytearray(db.read_bytes())
    at = raw.find(payload)
    assert at >= 0, "the payload should be in the checkpointed file"
    raw[at + len(payload) // 2] ^= 0x01
    db.write_bytes(bytes(raw))
    async with Runtime(url, tools=[_gated_chain(0, anyio.Event(), Counter())]) as rt:
        assert (await rt.wait(good.id)).status == "completed"
        with pytest.raises(ExecutionBroken, match=r"journal row 1 failed its checksum"):
            await rt.wait(bad.id)
        assert bad.id in rt.broken()
    with sqlite3.connect(db) as conn:  # its rows are left in place for inspection
        (count,) = conn.execute(
            "SELECT count(*) FROM journal WHERE execution_id = ?", (bad.id,)
        ).fetchone()
    assert count >= 3


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("unknown type", r"journal row 2: unknown record type 'from_the_future'"),
        ("malformed", r"journal row 2: node_scheduled payload does not decode"),
    ],
)
async def test_a_row_that_does_not_decode_stops_that_execution_only_I7(
    tmp_path: Path, damage: str, says: str
) -> None:
    # The row's checksum is right (a newer version wrote it, or a bug did): the store passes
    # it on, and decoding it must stop the execution, not skip the row.
    db = tmp_path / "runtime.db"
    url = f"sqlite:///{db}"
    entered = anyio.Event()
    wf = compile_yaml_text(CHAIN, "chain.yaml")
    async with Runtime(url, tools=[_gated_chain(2, entered, Counter())]) as rt:
        bad = await rt.start(rt.register(wf), {"log": "-"})
        await entered.wait()
        good = await rt.start(wf, {"log": "-"})
    type_, payload = "node_scheduled", _journal_payload(db, bad.id, 2)
    if damage == "unknown type":
        type_ = "from_the_future"
    else:
        payload = b"\xc1" + payload
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE journal SET type = ?, payload = ?, checksum = ? WHERE execution_id = ?"
            " AND seq = 2",
            (type_, payload, record_checksum(bad.id, 2, type_, payload), bad.id),
        )
    conn.close()
    async with Runtime(url, tools=[_gated_chain(0, anyio.Event(), Counter())]) as rt:
        assert (await rt.wait(good.id)).status == "completed"
        with pytest.raises(ExecutionBroken, match=says):
            await rt.wait(bad.id)
        assert bad.id in rt.broken()
    with sqlite3.connect(db) as conn:  # its rows are left in place for inspection
        rows = conn.execute(
            "SELECT type FROM journal WHERE execution_id = ? ORDER BY seq", (bad.id,)
        ).fetchall()
    conn.close()
    assert len(rows) >= 3 and rows[1] == (type_,)


@pytest.mark.slow
async def test_sigkill_mid_run_then_a_new_process_finishes_it(tmp_path: Path) -> None:
    db, log = tmp_path / "runtime.db", tmp_path / "effects.log"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_child.py"), str(db), str(log)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().strip()
        with anyio.fail_after(30):
            while "start 3" not in (log.read_text() if log.exists() else ""):
                await anyio.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    async with Runtime(f"sqlite:///{db}", tools=[make_step(block_at=None)]) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        entries = await rt.journal(execution_id)
    assert state.status == "completed"
    lines = log.read_text().splitlines()
    done = Counter(line.split()[1] for line in lines if line.startswith("done"))
    started = Counter(line.split()[1] for line in lines if line.startswith("start"))
    assert done == Counter({"1": 1, "2": 1, "3": 1, "4": 1})  # committed steps never re-ran
    assert started["3"] == 2  # the step in flight at the kill ran again
    # It was killed in the middle of a step run in its execution actor's own turn; recovery
    # wrote it a row, which the scheduler granted to the pool.
    assert [line.split()[3] for line in lines if line.startswith("start 3")] == ["inline", "pool"]
    completed = Counter(
        e.record.node_id
        for e in entries  # type: ignore[union-attr]
        if e.type == "node_completed"
    )
    assert completed == Counter({"s1": 1, "s2": 1, "s3": 1, "s4": 1})
