"""Verifying executions where they are stored: a store's audit log, its index, a key ring,
and the latest snapshot against the chain (``snapshot_check``).

Example::

    store = SqliteStore(path, readonly=True)
    await store.open()
    verdict = await verify_stored(store, ring, "exec_1")
    verdicts = await verify_all_stored(store, ring)
"""

from __future__ import annotations

from typing import Any

import msgspec

from tether.governance.chain_verify import AuditVerdict, verify_execution
from tether.governance.keys import KeyRing
from tether.governance.snapshot_check import check_snapshot
from tether.persistence.audit_chain import AuditLog
from tether.persistence.contract import Store


class AuditUnavailable(Exception):
    """The store keeps no audit log (the memory store chains nothing)."""


def audit_log_of(store: Store) -> AuditLog:
    """The store's audit log, or AuditUnavailable saying which stores have one."""
    method: Any = getattr(store, "audit_log", None)
    if method is None:
        raise AuditUnavailable(
            f"{type(store).__name__} keeps no audit log: the hash-chained journal is "
            "SQLite's and Postgres's (sqlite:/// and postgresql:// URLs)"
        )
    log: AuditLog = method()
    return log


async def verify_stored(store: Store, ring: KeyRing, execution_id: str) -> AuditVerdict:
    """Verify one execution's chain and signed heads as the store holds them."""
    log = audit_log_of(store)
    # Signatures first: every head they sign is committed, so the rows read after hold it
    # (the other order could see a signature for rows it did not read).
    signatures = await log.read_signatures(execution_id)
    journal = await log.read_chained(execution_id)
    verdict = verify_execution(execution_id, journal.rows, signatures, ring, journal.index_last_seq)
    if not verdict.ok:
        return verdict
    # The chain holds: is the snapshot recovery would start from its fold?
    found = await check_snapshot(store, execution_id, journal.rows)
    if found.problem is not None:
        return msgspec.structs.replace(
            verdict, ok=False, bad_seq=found.seq, problem=found.problem, snapshot="edited"
        )
    if found.seq is None:
        return verdict
    note = "matches" if found.checked else f"not checked ({found.note})"
    return msgspec.structs.replace(verdict, snapshot=f"snapshot at seq {found.seq} {note}")


async def verify_all_stored(store: Store, ring: KeyRing) -> list[AuditVerdict]:
    """Verify every execution the store has rows, an index row or signatures for."""
    log = audit_log_of(store)
    return [await verify_stored(store, ring, eid) for eid in await log.audited_executions()]
