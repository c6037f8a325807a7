"""Snapshots are not chained (derived state, rewritten as a run goes on) but recovery starts
from them: verify folds the chained records up to the latest snapshot and names one that was
edited (I2 says they are equal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest
from audit_runs import COUNTER, add_one

from tether import Runtime
from tether.governance import KeyRing, verify_stored
from tether.persistence import SqliteStore
from tether.persistence.integrity import SNAPSHOT_TYPE, record_checksum
from tether.runtime.snapshots import decode_state, encode_state

pytestmark = pytest.mark.anyio


async def _run_with_snapshots(db: Path) -> str:
    async with Runtime(f"sqlite:///{db}", tools=[add_one], snapshot_every=2) as rt:
        run = await rt.start(rt.register_yaml(COUNTER), {"n": 0})
        await run.result()
    return run.id


async def test_a_snapshot_is_checked_against_the_chain(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    eid = await _run_with_snapshots(db)
    async with SqliteStore(db, readonly=True) as store:
        verdict = await verify_stored(store, KeyRing(), eid)
    assert verdict.ok and verdict.snapshot == f"snapshot at seq {verdict.head_seq} matches"


async def test_an_edited_snapshot_is_named(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    eid = await _run_with_snapshots(db)
    conn = sqlite3.connect(db)
    seq, payload = conn.execute(
        "SELECT seq, payload FROM snapshots WHERE execution_id = ? ORDER BY seq DESC LIMIT 1",
        (eid,),
    ).fetchone()
    state = decode_state(payload)
    forged = encode_state(msgspec.structs.replace(state, data={**state.data, "n": 99}))
    conn.execute(  # with its checksum recomputed: only the fold can tell
        "UPDATE snapshots SET payload = ?, checksum = ? WHERE execution_id = ? AND seq = ?",
        (forged, record_checksum(eid, seq, SNAPSHOT_TYPE, forged), eid, seq),
    )
    conn.commit()
    conn.close()
    async with SqliteStore(db, readonly=True) as store:
        verdict = await verify_stored(store, KeyRing(), eid)
    assert not verdict.ok and verdict.bad_seq == seq
    assert "not the fold of the chained records (differs in data)" in (verdict.problem or "")
