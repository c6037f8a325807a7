"""Passivation in the Store contract (I9), run against both backends: a passivating turn
marks its execution's index row in the same transaction, the next turn ends the mark, and
recovery's reads leave passivated executions out but list their wake-ups."""

from __future__ import annotations

import pytest

from tether.persistence import (
    ExecutionStatus,
    IndexUpdate,
    NewRecord,
    Passive,
    StorageError,
    Store,
    Turn,
)

pytestmark = pytest.mark.anyio


def turn(eid: str, seq: int, *, index: IndexUpdate | None = None,
         passive: Passive | None = None) -> Turn:  # fmt: skip
    snapshot = b"state" if passive is not None else None
    return Turn(eid, seq, (NewRecord("step", f"{eid}:{seq}".encode()),), snapshot=snapshot,
                index=index, passive=passive)  # fmt: skip


def started(status: ExecutionStatus = "running", at: int = 1) -> IndexUpdate:
    return IndexUpdate(status, at, workflow_id="wf", workflow_version="1", created_at_ms=at)


async def test_a_passivating_turn_marks_the_row_and_recovery_skips_it_I9(store: Store) -> None:
    await store.append(turn("timer", 1, index=started(at=1), passive=Passive(5_000)))
    await store.append(turn("signal", 1, index=started("paused", at=2), passive=Passive()))
    await store.append(turn("early", 1, index=started(at=3), passive=Passive(900)))
    await store.append(turn("live", 1, index=started(at=4)))
    row = await store.get_execution("timer")
    assert row is not None and row.passivated and row.wake_at_ms == 5_000
    row = await store.get_execution("signal")
    assert row is not None and row.passivated and row.wake_at_ms is None
    assert [r.execution_id for r in await store.unfinished_executions()] == ["live"]
    assert await store.passive_wakes() == [("early", 900), ("timer", 5_000)]
    loaded = await store.load_executions(["timer", "live"])
    assert loaded["timer"].row == await store.get_execution("timer")
    assert loaded["timer"].snapshot is not None and loaded["timer"].snapshot.seq == 1
    assert not loaded["live"].row.passivated


async def test_the_next_turn_ends_a_passivation_I9(store: Store) -> None:
    await store.append(turn("a", 1, index=started(at=1), passive=Passive(5_000)))
    await store.append(turn("b", 1, index=started("paused", at=2), passive=Passive(7_000)))
    await store.append(turn("a", 2))  # no index change: last_seq moves past the mark
    await store.append(turn("b", 2, index=started("running", at=3)))  # a status change
    for eid in ("a", "b"):
        row = await store.get_execution(eid)
        assert row is not None and not row.passivated and row.wake_at_ms is None
    assert [r.execution_id for r in await store.unfinished_executions()] == ["a", "b"]
    assert await store.passive_wakes() == []
    await store.append(turn("a", 3, passive=Passive(9_000)))  # passivated again
    assert await store.passive_wakes() == [("a", 9_000)]
    await store.append(turn("a", 4, index=started("completed", at=4)))
    assert await store.passive_wakes() == []
    assert [r.execution_id for r in await store.unfinished_executions()] == ["b"]


async def test_a_passivating_turn_without_its_snapshot_is_refused(store: Store) -> None:
    bare = Turn("x", 1, (NewRecord("step", b"x"),), index=started(), passive=Passive())
    with pytest.raises(StorageError, match="snapshot"):
        await store.append(bare)
    assert await store.get_execution("x") is None
