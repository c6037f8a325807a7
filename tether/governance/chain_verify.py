"""Verifying an execution's audit chain and its signed heads, naming the first bad entry.

Works on rows as stored (``ChainedRow``) and signatures (``HeadSignature``), whether read from
a database or from an evidence bundle, so the same code verifies both, offline.

What is caught, and where it is named:

* a row edited (its checksum or its link no longer follows): that row;
* a row deleted: the missing seq (or, when later rows were renumbered, the first of those);
* rows reordered or inserted: the first row whose checksum or link does not follow;
* links rewritten to hide an edit: the first signed head the journal no longer matches, with
  the interval since the previous signed head the rewrite lies in;
* the tail truncated: the first missing seq, against the execution index and the signed heads;
* a signature swapped, forged or made by a key not in the ring: the head it signs.

Example::

    verdict = verify_execution("exec_1", rows, signatures, ring, index_last_seq=42)
    print(verdict.describe())       # "exec_1: ok, 42 rows chained from seq 1, signed through 40"
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tether.governance.keys import KeyRing
from tether.persistence.audit_chain import ChainedRow, HeadSignature, chain_link, genesis
from tether.persistence.integrity import record_checksum


class AuditVerdict(msgspec.Struct, frozen=True, gc=False):
    """What verifying one execution found. ``ok`` unless ``problem`` is set, and then
    ``bad_seq`` is the first bad entry."""

    execution_id: str
    ok: bool
    rows: int
    #: The first seq with a chain link (rows before it predate the chain); None: no link.
    chained_from: int | None = None
    head_seq: int | None = None
    #: The last link, hex.
    head: str | None = None
    #: The highest seq a verified signature covers (None: no signature).
    signed_through: int | None = None
    signatures: int = 0
    key_ids: tuple[str, ...] = ()
    bad_seq: int | None = None
    problem: str | None = None
    #: What checking the latest snapshot against the chain found ("" when not asked:
    #: ``snapshot_check`` needs the store; a bundle carries no snapshot).
    snapshot: str = ""
    #: Rows a redacted evidence bundle carries redacted: their links are taken as given (the
    #: rows after them and the signed heads still check those), their content cannot be.
    redacted: int = 0

    def describe(self) -> str:
        """One line for a person."""
        if not self.ok:
            return f"{self.execution_id}: BROKEN at seq {self.bad_seq}: {self.problem}"
        described = self._described()
        if self.redacted:
            described += f", {self.redacted} rows redacted (content not checkable here)"
        if self.snapshot:
            return f"{described}, {self.snapshot}"
        return described

    def _described(self) -> str:
        if self.chained_from is None:
            return f"{self.execution_id}: ok, {self.rows} rows, none chained (written before " \
                "the audit log, or with it off)"  # fmt: skip
        parts = [f"{self.execution_id}: ok, {self.rows} rows"]
        if self.chained_from > 1:
            parts.append(f"chained from seq {self.chained_from} (rows before predate the chain)")
        else:
            parts.append("chained from seq 1")
        if self.signed_through is None:
            parts.append("not signed")
        else:
            tail = (self.head_seq or 0) - self.signed_through
            parts.append(f"signed through seq {self.signed_through}"
                         + (f" ({tail} rows after it not signed yet)" if tail else ""))  # fmt: skip
        return ", ".join(parts)


def verify_execution(
    execution_id: str,
    rows: Sequence[ChainedRow],
    signatures: Sequence[HeadSignature],
    ring: KeyRing,
    index_last_seq: int | None = None,
    redacted: frozenset[int] = frozenset(),
) -> AuditVerdict:
    """Check ``rows`` (in seq order), then each signed head; the verdict names the earliest
    problem found. ``index_last_seq`` is the execution index's last seq, if known (catches a
    truncated tail that no signature covers yet). ``redacted``: seqs of rows whose payload a
    redacted bundle replaced (their checksum and link cannot be recomputed: the link is taken
    as given, and the next row's link or a signed head checks it)."""
    problems: list[tuple[int, str]] = []
    links: dict[int, bytes] = {}
    walked = _walk(execution_id, rows, links, redacted)
    if walked.problem is not None:
        problems.append(walked.problem)
    end = rows[-1].seq if rows else 0
    if index_last_seq is not None and walked.problem is None:
        if index_last_seq > end:
            problems.append((end + 1, f"rows {end + 1} to {index_last_seq} are missing: the "
                                      "execution index says the journal ends at "
                                      f"{index_last_seq} (truncated)"))  # fmt: skip
        elif index_last_seq < end:
            first = index_last_seq + 1
            problems.append((first, f"row {first} is past the end the execution index "
                                    f"records ({index_last_seq}): appended behind the "
                                    "engine's back"))  # fmt: skip
    signed_through = None
    previous_signed = 0
    for sig in sorted(signatures, key=lambda s: s.seq):
        problem = _check_signature(execution_id, sig, ring, links, end, previous_signed)
        if problem is not None:
            problems.append((sig.seq if sig.seq <= end else end + 1, problem))
            continue
        previous_signed = sig.seq
        signed_through = sig.seq
    base = {
        "execution_id": execution_id,
        "rows": len(rows),
        "chained_from": walked.chained_from,
        "head_seq": walked.head_seq,
        "head": walked.head.hex() if walked.head is not None else None,
        "signed_through": signed_through,
        "signatures": len(signatures),
        "key_ids": tuple(sorted({s.key_id for s in signatures})),
        "redacted": sum(1 for r in rows if r.seq in redacted),
    }
    if problems:
        seq, problem = min(problems, key=lambda p: p[0])
        return AuditVerdict(ok=False, bad_seq=seq, problem=problem, **base)  # type: ignore[arg-type]
    return AuditVerdict(ok=True, **base)  # type: ignore[arg-type]


class _Walk(msgspec.Struct, gc=False):
    problem: tuple[int, str] | None = None
    chained_from: int | None = None
    head_seq: int | None = None
    head: bytes | None = None


def _walk(
    execution_id: str,
    rows: Sequence[ChainedRow],
    links: dict[int, bytes],
    redacted: frozenset[int] = frozenset(),
) -> _Walk:
    """Rows in order: contiguous from 1, each matching its checksum, each link following the
    one before (the execution's genesis before the first link). Fills ``links`` with the
    verified ones (and the given links of ``redacted`` rows)."""
    out = _Walk()
    previous: bytes | None = None
    expected = 1
    for row in rows:
        seq = row.seq
        if row.execution_id != execution_id:
            out.problem = (seq, f"row {seq} belongs to execution {row.execution_id}")
            return out
        if seq != expected:
            out.problem = (expected, f"row {expected} is missing (deleted, or the rows after "
                                     "it renumbered)")  # fmt: skip
            return out
        hidden = seq in redacted  # its payload is not the one the checksum and link cover
        if not (isinstance(row.payload, bytes) and isinstance(row.checksum, int)) or (
            not hidden and record_checksum(execution_id, seq, row.type, row.payload) != row.checksum
        ):
            out.problem = (seq, f"row {seq} ({row.type}) does not match its checksum (edited, "
                                "or moved from another seq)")  # fmt: skip
            return out
        out.head_seq = seq
        if row.chain is None:
            if previous is not None:
                out.problem = (seq, f"row {seq} has no chain link, but the chain runs from seq "
                                    f"{out.chained_from} (its link was removed)")  # fmt: skip
                return out
            expected += 1
            continue
        if previous is None:
            out.chained_from = seq
        want = (
            row.chain
            if hidden
            else chain_link(previous or genesis(execution_id), seq, row.type, row.payload)
        )
        if want != row.chain:
            out.problem = (seq, f"row {seq} ({row.type}): its chain link does not follow from "
                                "the row before (a row edited, inserted, reordered or deleted "
                                "here)")  # fmt: skip
            return out
        previous = row.chain
        links[seq] = row.chain
        out.head = row.chain
        expected += 1
    return out


def _check_signature(
    execution_id: str,
    sig: HeadSignature,
    ring: KeyRing,
    links: dict[int, bytes],
    end: int,
    previous_signed: int,
) -> str | None:
    seq = sig.seq
    if sig.execution_id != execution_id:
        return f"the head signed at seq {seq} belongs to execution {sig.execution_id}"
    if sig.key_id not in ring.keys:
        return f"the head at seq {seq} is signed by key {sig.key_id}, which is not in the ring"
    if not ring.verify_head(sig.key_id, execution_id, seq, sig.chain, sig.signature, sig.proof):
        return f"the signature on the head at seq {seq} does not verify with key {sig.key_id} " \
            "(a signature swapped or forged, or the signed head edited)"  # fmt: skip
    if seq > end:
        return f"the journal ends at seq {end}, but a head at seq {seq} was signed " \
            f"(rows {end + 1} to {seq} deleted: truncated)"  # fmt: skip
    link = links.get(seq)
    if link is None:
        return f"row {seq} was signed as a chain head but has no verified link"
    if link != sig.chain:
        return f"row {seq} no longer matches the head signed at seq {seq}: rows " \
            f"{previous_signed + 1} to {seq} were rewritten with their links"  # fmt: skip
    return None
