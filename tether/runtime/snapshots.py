"""Execution state at rest: snapshots (I9) and loading a state from its journal (I2, I7).

A snapshot is the encoded :class:`ExecutionState` after a turn; loading takes the latest one
and folds the records after it. A snapshot that does not verify or decode is only a lost
shortcut: the journal is replayed from the start.

Example::

    state, graph = await load_state(services, "exec_1")
    assert decode_state(encode_state(state)) == state
"""

from __future__ import annotations

import logging

import msgspec

from tether.persistence.contract import LoadedExecution, SnapshotCorruption
from tether.runtime.graph import Graph
from tether.runtime.records import decode_rows
from tether.runtime.services import Services
from tether.runtime.state import ExecutionState, replay

_log = logging.getLogger(__name__)

_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(ExecutionState)

#: Bumped whenever ExecutionState changes shape: a snapshot of another shape is not decoded
#: into the wrong fields, it is skipped and the journal replayed from the start.
SNAPSHOT_FORMAT = b"\x03"


def encode_state(state: ExecutionState) -> bytes:
    return SNAPSHOT_FORMAT + _state_encoder.encode(state)


def decode_state(payload: bytes) -> ExecutionState:
    if payload[:1] != SNAPSHOT_FORMAT:
        raise msgspec.DecodeError(f"snapshot format {payload[:1]!r}, expected {SNAPSHOT_FORMAT!r}")
    return _state_decoder.decode(payload[1:])


async def load_state(
    services: Services, execution_id: str, loaded: LoadedExecution | None = None
) -> tuple[ExecutionState, Graph | None]:
    """Latest snapshot plus the records after it, folded. Raises on a broken journal (I7).

    ``loaded``: the same, read already (recovery reads many executions at once); a snapshot
    of it that does not decode sends this back to the store, which says why.
    """
    if loaded is not None:
        start = None
        if loaded.snapshot is not None:
            try:
                start = decode_state(loaded.snapshot.payload)
            except msgspec.DecodeError:
                return await load_state(services, execution_id)
        graph = await services.graph(loaded.row.workflow_id, loaded.row.workflow_version)
        return replay(graph, (e.record for e in decode_rows(loaded.records)), start), graph
    row = await services.store.get_execution(execution_id)
    if row is None:
        return ExecutionState(), None
    graph = await services.graph(row.workflow_id, row.workflow_version)
    start, from_seq = await _snapshot_or_none(services, execution_id)
    entries = decode_rows(await services.store.read(execution_id, from_seq))
    return replay(graph, (e.record for e in entries), start), graph


async def _snapshot_or_none(
    services: Services, execution_id: str
) -> tuple[ExecutionState | None, int]:
    """The latest snapshot and the first seq after it; a bad snapshot is only a lost shortcut:
    the journal is intact, so replay from the start (and say so in the log)."""
    try:
        snap = await services.store.latest_snapshot(execution_id)
        if snap is None:
            return None, 1
        return decode_state(snap.payload), snap.seq + 1
    except (SnapshotCorruption, msgspec.DecodeError) as exc:
        _log.warning(
            "execution %s: ignoring snapshot (%s); replaying from the start", execution_id, exc
        )
        return None, 1
