"""The audit chain over the journal: one SHA-256 link per journal row, per execution.

An execution's chain starts from ``genesis(execution_id)`` (a hash of the id, so a chain is
bound to its execution), and a row's link is ``SHA-256(previous link || seq as 8 bytes ||
length-prefixed type || payload)``. The writer computes the links as it accepts a turn, so a
row and its link commit in the same transaction (I4); the chain is made of the journal itself,
and governance facts read from it are not written twice. Editing, deleting, inserting or
reordering a row breaks every link from it on; rewriting the links too is caught by the
signed heads (``tether.governance``).

Rows written before the chain existed (or with the audit log off) have no link: a verifier
reports the seq the chain starts from (its first link follows the genesis).

Example::

    first = chain_link(genesis("exec_1"), 1, "execution_started", b"...")
    second = chain_link(first, 2, "node_scheduled", b"...")
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import Protocol

import msgspec

#: Type names as their length-prefixed bytes; record types are a small fixed set, and the
#: cache stops growing at a bound in case a store is fed arbitrary ones.
_TYPE_BYTES: dict[str, bytes] = {}
_TYPE_CACHE_BOUND = 4096


def genesis(execution_id: str) -> bytes:
    """The "previous link" of an execution's first chained row."""
    return sha256(b"tether-audit-chain-v1\x00" + execution_id.encode()).digest()


def chain_link(previous: bytes, seq: int, type_: str, payload: bytes) -> bytes:
    """The link of one row: SHA-256 over the previous link, the seq, the type and payload.

    One hash over one joined buffer (~0.7 us a row; it is on the append path). The type is
    length-prefixed, so bytes cannot move between it and the payload; the execution id is in
    the chain through its genesis.
    """
    encoded = _TYPE_BYTES.get(type_)
    if encoded is None:
        raw = type_.encode()
        encoded = len(raw).to_bytes(4, "big") + raw
        if len(_TYPE_BYTES) < _TYPE_CACHE_BOUND:
            _TYPE_BYTES[type_] = encoded
    return sha256(b"".join((previous, seq.to_bytes(8, "big"), encoded, payload))).digest()


class ChainedRow(msgspec.Struct, frozen=True, gc=False):
    """A journal row as an auditor reads it: unverified, with its CRC and its link (None for
    a row written before the chain, or with the audit log off)."""

    execution_id: str
    seq: int
    type: str
    payload: bytes
    checksum: int
    chain: bytes | None


class ChainedJournal(msgspec.Struct, frozen=True, gc=False):
    """An execution's rows and its index's last seq (None: no index row), read together."""

    rows: list[ChainedRow]
    index_last_seq: int | None


class HeadSignature(msgspec.Struct, frozen=True, gc=False):
    """An execution's chain head at ``seq``, signed: ``signature`` is key ``key_id``'s
    Ed25519 signature over the Merkle root of one signing pass's heads, and ``proof`` leads
    this head to that root (see ``tether.governance.keys`` and ``merkle``)."""

    execution_id: str
    seq: int
    chain: bytes
    key_id: str
    signature: bytes
    signed_at_ms: int
    proof: bytes


class ChainHead(msgspec.Struct, frozen=True, gc=False):
    """An execution's newest link as the writer committed it (what the signer signs)."""

    execution_id: str
    seq: int
    chain: bytes


class AuditLog(Protocol):
    """What the audit verifier and signer need from a store (SQLite has one:
    ``SqliteStore.audit_log()``)."""

    #: Whether this store chains the rows it writes now.
    chaining: bool

    async def read_chained(self, execution_id: str) -> ChainedJournal:
        """Every journal row of the execution in seq order, as stored (unverified), with
        the index's last seq read in the same snapshot."""
        ...

    async def read_signatures(self, execution_id: str) -> list[HeadSignature]:
        """Its signed heads, oldest first."""
        ...

    async def audited_executions(self) -> list[str]:
        """Every execution with journal rows, an index row or signed heads."""
        ...

    async def unsigned_heads(self) -> list[ChainHead]:
        """Chained last rows no signature covers yet."""
        ...

    def take_heads(self) -> list[ChainHead]:
        """Heads committed by this process since the last call (the first call starts the
        following and returns nothing)."""
        ...

    async def put_signatures(self, signatures: Sequence[HeadSignature]) -> None:
        """Store signed heads (through the store's one writer)."""
        ...
