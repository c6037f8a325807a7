"""A group of turns, heartbeats and grants checked and written as one transaction (I4, I5).

The writer holds the schema's writer lock, so what it reads at the start of a batch (each
execution's last seq, each named work item's status and fence) stays true until it commits:
the checks run here, in Python, with the same pure rules as the other backends
(``tether.persistence.leases``), and a refused turn or heartbeat fails alone while the rest of
its batch commits. The SQL repeats the checks (the journal's primary key, fence conditions in
WHERE clauses, row counts), so a wrong check fails the batch loudly instead of writing it.

Example::

    prepared = [prepare(turn) for turn in turns]
    view = await look_up(conn, prepared, heartbeat_ids=[])
    problems = check_turns(prepared, view)          # None, or the error for that turn
    accepted = [p for p, e in zip(prepared, problems) if e is None]
    await write_items(conn, accepted, view)
    await write_rows(conn, accepted, view)
    await conn.commit()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.persistence.audit_chain import chain_link, genesis
from tether.persistence.contract import SequenceConflict, StorageError, Turn
from tether.persistence.integrity import SNAPSHOT_TYPE, record_checksum
from tether.persistence.leases import ItemState, after_settle, heartbeat_problem, settle_problem
from tether.persistence.ownership import EngineFences, OwnershipLost
from tether.persistence.postgres import journal_ops, lease_ops, ownership_ops, view_ops
from tether.persistence.postgres.connection import Conn

_Row = tuple[Any, ...]


class CheckMismatch(StorageError):
    """The table disagreed with the batch's checks (a row count): the batch rolls back and
    each of its items is tried again alone, with fresh reads."""


@dataclass(slots=True)
class PreparedTurn:
    """A turn's rows, built and checksummed by the appending task, off the writer."""

    turn: Turn
    last_seq: int
    journal: list[_Row]
    snapshot: _Row | None
    items: list[_Row]
    settles: list[dict[str, Any]]
    #: The rows' audit chain links, set by ``check_turns`` when it accepts the turn with the
    #: audit log on (the previous link is read in the batch's transaction).
    links: list[bytes] | None = None


def prepare(turn: Turn) -> PreparedTurn:
    eid = turn.execution_id
    journal: list[_Row] = []
    seq = turn.expected_seq
    for rec in turn.records:
        crc = record_checksum(eid, seq, rec.type, rec.payload)
        journal.append((eid, seq, rec.type, rec.payload, crc))
        seq += 1
    last = seq - 1
    snapshot = None
    if turn.snapshot is not None:
        snapshot = (eid, last, turn.snapshot,
                    record_checksum(eid, last, SNAPSHOT_TYPE, turn.snapshot))  # fmt: skip
    items = [lease_ops.insert_params(w) for w in turn.work_items]
    settles = [lease_ops.settle_params(s) for s in turn.settles]
    return PreparedTurn(turn, last, journal, snapshot, items, settles)


@dataclass(slots=True)
class BatchView:
    """What the batch's checks start from, read in the batch's transaction."""

    last_seq: dict[str, int]
    indexed: set[str]
    items: dict[str, ItemState]
    #: Work items the accepted turns insert that do not exist yet (set by ``check_turns``).
    new_items: set[str] = field(default_factory=set)
    #: Each execution's last chain link (None: unchained so far), when the audit log is on.
    links: dict[str, bytes | None] = field(default_factory=dict)
    #: Engines sharing the schema: each execution's owner row ``(engine_id, fence)``, locked
    #: until the batch commits (None: a single engine, no ownership).
    owners: dict[str, tuple[str, int]] | None = None
    #: Executions the accepted turns start here, whose owner rows the batch inserts.
    new_owners: list[str] = field(default_factory=list)


async def look_up(
    conn: Conn,
    prepared: Sequence[PreparedTurn],
    heartbeat_ids: Iterable[str],
    audit: bool = True,
    shared: bool = False,
) -> BatchView:
    """One read for the executions' last seqs (and links, and with ``shared`` their owner
    rows, locked), one for every work item named."""
    eids = {p.turn.execution_id for p in prepared}
    owners: dict[str, tuple[str, int]] | None = None
    if shared:
        seqs, owners = (
            await ownership_ops.last_seqs_and_owners(conn, eids, audit) if eids else ({}, {})
        )
    else:
        seqs = await journal_ops.last_seqs(conn, eids, chained=audit) if eids else {}
    ids = set(heartbeat_ids)
    for p in prepared:
        ids.update(w.work_item_id for w in p.turn.work_items)
        ids.update(s.work_item_id for s in p.turn.settles)
    items = await lease_ops.item_states(conn, ids) if ids else {}
    return BatchView(
        {eid: last for eid, (last, _, _) in seqs.items()},
        {eid for eid, (_, indexed, _) in seqs.items() if indexed},
        items,
        links={eid: link for eid, (_, _, link) in seqs.items()},
        owners=owners,
    )


def check_heartbeats(
    beats: Sequence[tuple[str, int]], view: BatchView
) -> list[StorageError | None]:
    """Per ``(work_item_id, fence)``: why it is refused, or None."""
    return [heartbeat_problem(wid, fence, view.items.get(wid)) for wid, fence in beats]


def check_turns(
    prepared: Sequence[PreparedTurn],
    view: BatchView,
    audit: bool = True,
    fences: EngineFences | None = None,
) -> list[StorageError | None]:
    """Per turn, in order: why it is refused, or None. Each turn is checked against the turns
    accepted before it in the batch (its expected_seq follows theirs; its settles see the
    states they left); with ``audit``, an accepted turn's rows are linked to the chain; with
    ``fences``, a turn of an execution this engine does not own (the owner row, locked by the
    look-up, names another engine or a later fence) is refused with OwnershipLost."""
    seqs = dict(view.last_seq)
    links = dict(view.links)
    states = dict(view.items)
    problems: list[StorageError | None] = []
    starting: set[str] = set()
    for p in prepared:
        turn = p.turn
        if fences is not None:  # first: a stale owner is told so, whatever its seq
            refused = _ownership_problem(turn, view, fences, starting)
            if refused is not None:
                problems.append(refused)
                continue
        following = seqs.get(turn.execution_id, 0) + 1
        if turn.expected_seq != following:
            problems.append(SequenceConflict(turn.execution_id, turn.expected_seq, following))
            continue
        changes = _item_changes(turn, states)
        if isinstance(changes, StorageError):
            problems.append(changes)
            continue
        view.new_items.update(w for w in changes.new if w not in view.items)
        eid = turn.execution_id
        if fences is not None and eid not in (view.owners or {}) and eid not in starting:
            starting.add(eid)  # its first turn: the batch inserts its owner row
            view.new_owners.append(eid)
        states.update(changes.states)
        seqs[turn.execution_id] = p.last_seq
        if audit:
            eid = turn.execution_id
            link = links.get(eid) or genesis(eid)
            chained = []
            for row in p.journal:
                link = chain_link(link, row[1], row[2], row[3])
                chained.append(link)
            p.links = chained
            links[eid] = link
        problems.append(None)
    return problems


def _ownership_problem(
    turn: Turn, view: BatchView, fences: EngineFences, starting: set[str]
) -> OwnershipLost | None:
    """None when this engine owns the turn's execution with the fence it holds, or when the
    turn starts an execution nobody owns yet (its owner row is inserted with the turn)."""
    eid = turn.execution_id
    row = (view.owners or {}).get(eid)
    if row is None:
        if turn.expected_seq == 1 or eid in starting:
            return None
        fences.held.pop(eid, None)
        return OwnershipLost(eid, fences.engine_id, None)
    if row == (fences.engine_id, fences.held.get(eid)):
        return None
    fences.held.pop(eid, None)
    return OwnershipLost(eid, fences.engine_id, row[0])


@dataclass(slots=True)
class _Changes:
    states: dict[str, ItemState]
    new: set[str]


def _item_changes(turn: Turn, states: dict[str, ItemState]) -> _Changes | StorageError:
    """Inserts first (an existing id is left alone), then the settles in order."""
    local: dict[str, ItemState] = {}
    new: set[str] = set()
    for row in turn.work_items:
        wid = row.work_item_id
        if wid not in local and wid not in states:
            local[wid] = ItemState(row.status, row.fence)
            new.add(wid)
    for settle in turn.settles:
        wid = settle.work_item_id
        state = local.get(wid) or states.get(wid)
        problem = settle_problem(settle, state)
        if problem is not None:
            return problem
        assert state is not None
        local[wid] = after_settle(settle, state)
    return _Changes(local, new)


async def write_items(conn: Conn, prepared: Sequence[PreparedTurn], view: BatchView) -> None:
    """Insert the accepted turns' new work items, then apply their settles, in order.

    Raises CheckMismatch when the table disagrees with the checks (the caller rolls back).
    """
    items = [row for p in prepared for row in p.items]
    if items and await lease_ops.insert_work_items(conn, items) != len(view.new_items):
        raise CheckMismatch(f"{len(view.new_items)} work items were to be new; others were")
    settles = [row for p in prepared for row in p.settles]
    if settles and await lease_ops.apply_settles(conn, settles) != len(settles):
        raise CheckMismatch("a settle's fence check failed in SQL")


async def write_rows(
    conn: Conn, prepared: Sequence[PreparedTurn], view: BatchView, engine_id: str | None = None
) -> None:
    """Insert the accepted turns' journal rows, snapshots and index changes (and, for an
    engine sharing the schema, the owner rows of the executions they start): statements whose
    results nobody reads, so the writer pipelines them with its commit (one round trip)."""
    if engine_id is not None:
        await ownership_ops.insert_owners(conn, view.new_owners, engine_id)
    rows = [row for p in prepared for row in p.journal]
    if prepared and prepared[0].links is not None:  # the audit log is on for all or none
        links = [link for p in prepared if p.links is not None for link in p.links]
        await journal_ops.insert_journal(conn, rows, links)
    else:
        await journal_ops.insert_journal(conn, rows)
    await journal_ops.insert_snapshots(conn, [p.snapshot for p in prepared if p.snapshot])
    upserts, bumps = _index_rows(prepared, view.indexed)
    await journal_ops.upsert_executions(conn, upserts)
    # The run views' feed: one row per status change, for the projector to follow.
    await view_ops.append_feed(conn, [(row[0], row[6]) for row in upserts])
    await journal_ops.bump_last_seqs(conn, bumps)
    passive = [
        (p.last_seq, p.turn.passive.wake_at_ms, p.turn.execution_id)
        for p in prepared
        if p.turn.passive is not None
    ]
    await journal_ops.mark_passive(conn, passive)


def _index_rows(
    prepared: Sequence[PreparedTurn], indexed: set[str]
) -> tuple[list[_Row], list[_Row]]:
    """Upserts for turns with an IndexUpdate, and last_seq bumps for each execution whose
    final turn of the batch has none (when it has an index row by then)."""
    upserts: list[_Row] = []
    final: dict[str, PreparedTurn] = {}
    with_row = set(indexed)
    for p in prepared:
        eid, ix = p.turn.execution_id, p.turn.index
        if ix is not None:
            upserts.append((eid, ix.workflow_id, ix.workflow_version, ix.status,
                            ix.created_at_ms, ix.updated_at_ms, p.last_seq, ix.error))  # fmt: skip
            with_row.add(eid)
        final[eid] = p
    bumps = [
        (p.last_seq, eid) for eid, p in final.items() if p.turn.index is None and eid in with_row
    ]
    return upserts, bumps
