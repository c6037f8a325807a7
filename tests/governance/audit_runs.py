"""Helpers for the audit tests: real runs on a real SQLite file, raw access to its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tether import Runtime, tool
from tether.governance import HeadSigner, SigningKey, audit_log_of
from tether.persistence import SqliteStore
from tether.persistence.audit_chain import chain_link, genesis
from tether.persistence.integrity import record_checksum
from tether.runtime.internals import runtime_internals

COUNTER = Path(__file__).resolve().parents[2] / "examples" / "counter.yaml"


@tool
async def add_one(n: int) -> int:
    return n + 1


async def run_counters(db: Path, runs: int, key: SigningKey | None = None) -> list[str]:
    """Run ``runs`` counter workflows to completion on ``db``; with ``key``, a signer
    follows the journal and signs every head (its last pass runs when the runtime stops)."""
    async with Runtime(f"sqlite:///{db}", tools=[add_one]) as rt:
        wf = rt.register_yaml(COUNTER)
        ids = []
        signer = None
        if key is not None:
            store = runtime_internals(rt).services.store
            signer = HeadSigner(audit_log_of(store), key, lambda: 1_000)
            await signer.sign_pending()  # start following before the runs
        for _ in range(runs):
            run = await rt.start(wf, {"n": 0})
            await run.result()
            ids.append(run.id)
        if signer is not None:
            await signer.sign_pending()
    return ids


async def sign_all(db: Path, key: SigningKey) -> int:
    """Sign every head no signature covers (a signer's catch-up pass), with ``key``."""
    async with SqliteStore(db) as store:
        return await HeadSigner(store.audit_log(), key, lambda: 2_000).sign_pending()


def raw(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL on the file behind the engine's back (the tamperer's view)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def rows_of(db: Path, eid: str) -> list[tuple[int, str, bytes, int, bytes | None]]:
    found = raw(
        db, "SELECT seq, type, payload, checksum, chain FROM journal WHERE execution_id = ?"
        " ORDER BY seq", (eid,),
    )  # fmt: skip
    return [(int(s), str(t), bytes(p), int(c), None if h is None else bytes(h))  # type: ignore[arg-type]
            for s, t, p, c, h in found]  # fmt: skip


def rewrite_payload(db: Path, eid: str, seq: int, payload: bytes, relink: bool) -> None:
    """Put ``payload`` at ``seq`` with a matching checksum (a tamperer who knows the CRC); with
    ``relink``, also recompute every link from there on (one who knows the chain too)."""
    rows = rows_of(db, eid)
    type_ = rows[seq - 1][1]
    raw(db, "UPDATE journal SET payload = ?, checksum = ? WHERE execution_id = ? AND seq = ?",
        (payload, record_checksum(eid, seq, type_, payload), eid, seq))  # fmt: skip
    if relink:
        relink_from(db, eid, seq)


def relink_from(db: Path, eid: str, seq: int) -> None:
    rows = rows_of(db, eid)
    previous = rows[seq - 2][4] if seq > 1 else genesis(eid)
    for s, t, p, _, _ in rows[seq - 1 :]:
        assert previous is not None
        previous = chain_link(previous, s, t, p)
        raw(db, "UPDATE journal SET chain = ? WHERE execution_id = ? AND seq = ?",
            (previous, eid, s))  # fmt: skip
