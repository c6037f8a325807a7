"""The Store contract, run against both backends (memory, and SQLite on a real file)."""

from __future__ import annotations

import anyio
import pytest

from tether.persistence import (
    IndexUpdate,
    NewRecord,
    SequenceConflict,
    StorageError,
    Store,
    StoreClosed,
    Turn,
    WorkflowVersionConflict,
)

pytestmark = pytest.mark.anyio


def turn(eid: str, seq: int, *types: str, snapshot: bytes | None = None,
         index: IndexUpdate | None = None) -> Turn:  # fmt: skip
    records = tuple(NewRecord(t, f"{eid}:{seq + i}:{t}".encode()) for i, t in enumerate(types))
    return Turn(eid, seq, records or (NewRecord("step", f"{eid}:{seq}".encode()),),
                snapshot=snapshot, index=index)  # fmt: skip


def started(status: str = "running", at: int = 1, wf: str = "wf", error: str | None = None
            ) -> IndexUpdate:  # fmt: skip
    return IndexUpdate(status, at, workflow_id=wf, workflow_version="1", created_at_ms=at,
                       error=error)  # fmt: skip


async def test_append_read_round_trip_I4(store: Store) -> None:
    assert await store.append(turn("e1", 1, "started")) == 1
    assert await store.append(turn("e1", 2, "a", "b")) == 3
    rows = await store.read("e1")
    assert [(r.execution_id, r.seq, r.type) for r in rows] == [
        ("e1", 1, "started"), ("e1", 2, "a"), ("e1", 3, "b"),
    ]  # fmt: skip
    assert rows[1].payload == b"e1:2:a"
    assert [r.seq for r in await store.read("e1", from_seq=3)] == [3]
    assert await store.read("e1", from_seq=4) == []
    assert await store.read("unknown") == []


async def test_expected_seq_conflict_writes_nothing_I4(store: Store) -> None:
    await store.append(turn("e1", 1, "a", "b"))
    for wrong in (1, 2, 4):
        with pytest.raises(SequenceConflict) as info:
            await store.append(turn("e1", wrong, "x", "y"))
        assert (info.value.execution_id, info.value.expected, info.value.actual_next) == (
            "e1", wrong, 3,
        )  # fmt: skip
        assert "e1" in str(info.value) and str(wrong) in str(info.value) and "3" in str(info.value)
    with pytest.raises(SequenceConflict):
        await store.append(turn("new", 2, "x"))
    assert [r.type for r in await store.read("e1")] == ["a", "b"]
    assert await store.read("new") == []


async def test_malformed_turns_are_refused(store: Store) -> None:
    with pytest.raises(StorageError, match="expected_seq"):
        await store.append(turn("e1", 0))
    with pytest.raises(StorageError, match="at least one record"):
        await store.append(Turn("e1", 1, ()))


async def test_snapshots_latest_wins(store: Store) -> None:
    assert await store.latest_snapshot("e1") is None
    await store.append(turn("e1", 1, "a", "b", snapshot=b"S2"))
    await store.append(turn("e1", 3, "c"))
    snap = await store.latest_snapshot("e1")
    assert snap is not None and (snap.seq, snap.payload) == (2, b"S2")
    await store.append(turn("e1", 4, "d", snapshot=b"S4"))
    await store.append(turn("e1", 5, "e", snapshot=b"S5"))
    snap = await store.latest_snapshot("e1")
    assert snap is not None and (snap.execution_id, snap.seq, snap.payload) == ("e1", 5, b"S5")
    assert await store.latest_snapshot("other") is None


async def test_load_executions_reads_what_one_at_a_time_reads_I7(store: Store) -> None:
    await store.append(turn("e1", 1, "a", "b", snapshot=b"S2", index=started()))
    await store.append(turn("e1", 3, "c", "d"))
    await store.append(turn("e2", 1, "a", index=started()))
    await store.append(turn("e3", 1, "a", "b", snapshot=b"S2", index=started()))
    await store.append(turn("no-index", 1, "a"))
    ids = ["e1", "e2", "e3", "no-index", "unknown"]
    loaded = await store.load_executions(ids)
    assert sorted(loaded) == ["e1", "e2", "e3"]  # no index row: left out
    for eid, got in loaded.items():
        assert got.row == await store.get_execution(eid)
        snap = await store.latest_snapshot(eid)
        assert got.snapshot == snap
        assert got.records == await store.read(eid, snap.seq + 1 if snap else 1)
    assert [r.seq for r in loaded["e1"].records] == [3, 4]
    assert loaded["e3"].records == []  # a snapshot at the last seq: nothing after it
    assert await store.load_executions([]) == {}


async def test_index_created_and_updated_with_the_turn(store: Store) -> None:
    await store.append(turn("e1", 1, "started", index=started(at=10)))
    await store.append(turn("e1", 2, "step"))  # no index update: last_seq still follows
    row = await store.get_execution("e1")
    assert row is not None
    assert (row.workflow_id, row.workflow_version, row.status, row.last_seq) == (
        "wf", "1", "running", 2,
    )  # fmt: skip
    update = IndexUpdate("failed", 20, workflow_id="ignored", created_at_ms=99, error="boom")
    await store.append(turn("e1", 3, "failed", index=update))
    row = await store.get_execution("e1")
    assert row is not None
    assert (row.workflow_id, row.status, row.created_at_ms, row.updated_at_ms) == (
        "wf", "failed", 10, 20,
    )  # fmt: skip
    assert (row.last_seq, row.error) == (3, "boom")
    assert await store.get_execution("nope") is None


async def test_list_filters_paging_newest_first(store: Store) -> None:
    for i in range(6):
        wf = "alpha" if i % 2 == 0 else "beta"
        status = "completed" if i < 2 else "running"
        await store.append(turn(f"e{i}", 1, index=started(status, at=100 + i, wf=wf)))
    ids = [r.execution_id for r in await store.list_executions()]
    assert ids == ["e5", "e4", "e3", "e2", "e1", "e0"]
    page = await store.list_executions(limit=2, offset=2)
    assert [r.execution_id for r in page] == ["e3", "e2"]
    running = await store.list_executions(status="running")
    assert [r.execution_id for r in running] == ["e5", "e4", "e3", "e2"]
    alpha_running = await store.list_executions(status="running", workflow_id="alpha")
    assert [r.execution_id for r in alpha_running] == ["e4", "e2"]
    assert await store.list_executions(status="cancelled") == []


async def test_unfinished_executions_oldest_first(store: Store) -> None:
    statuses = ["running", "completed", "waiting", "failed", "cancelled", "limit_exceeded"]
    for i, status in enumerate(statuses):
        await store.append(turn(f"e{i}", 1, index=started(status, at=50 - i)))
    unfinished = await store.unfinished_executions()
    assert [r.execution_id for r in unfinished] == ["e2", "e0"]


async def test_workflow_registry(store: Store) -> None:
    await store.put_workflow("wf", "1", b"ir-1", 10)
    await store.put_workflow("wf", "1", b"ir-1", 11)  # identical bytes: no-op
    with pytest.raises(WorkflowVersionConflict, match="wf"):
        await store.put_workflow("wf", "1", b"ir-other", 12)
    await store.put_workflow("wf", "2", b"ir-2", 20)
    await store.put_workflow("other", "1", b"ir-o", 5)
    one = await store.get_workflow("wf", "1")
    assert one is not None and (one.ir, one.created_at_ms) == (b"ir-1", 10)
    latest = await store.get_workflow("wf")
    assert latest is not None and latest.version == "2"
    assert await store.get_workflow("wf", "3") is None
    assert await store.get_workflow("missing") is None
    listed = [(w.workflow_id, w.version) for w in await store.list_workflows()]
    assert listed == [("other", "1"), ("wf", "1"), ("wf", "2")]


async def test_many_concurrent_appenders_I6(store: Store) -> None:
    tasks, executions_each, turns_each = 200, 3, 4
    acked: list[tuple[str, int]] = []

    async def appender(n: int) -> None:
        for k in range(turns_each):
            for e in range(executions_each):
                eid = f"t{n}-e{e}"
                last = await store.append(turn(eid, 2 * k + 1, "a", "b"))
                acked.append((eid, last))

    async with anyio.create_task_group() as tg:
        for n in range(tasks):
            tg.start_soon(appender, n)
    assert len(acked) == tasks * executions_each * turns_each
    for n in (0, tasks // 2, tasks - 1):
        for e in range(executions_each):
            rows = await store.read(f"t{n}-e{e}")
            assert [r.seq for r in rows] == list(range(1, 2 * turns_each + 1))
            assert [r.type for r in rows] == ["a", "b"] * turns_each


async def test_failing_turn_in_a_batch_fails_alone(store: Store) -> None:
    for i in range(10):
        await store.append(turn(f"e{i}", 1))
    outcomes: dict[str, object] = {}

    async def attempt(key: str, t: Turn) -> None:
        try:
            outcomes[key] = await store.append(t)
        except SequenceConflict as exc:
            outcomes[key] = exc

    # Queued together, so the SQLite writer commits them in one batch.
    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(attempt, f"e{i}", turn(f"e{i}", 2 if i != 4 else 5))
        # Two turns of one execution in the same batch are checked against each other.
        tg.start_soon(attempt, "e9-second", turn("e9", 3, "x", "y"))
        tg.start_soon(attempt, "e9-stale", turn("e9", 3, "z"))
    assert isinstance(outcomes.pop("e4"), SequenceConflict)
    assert isinstance(outcomes.pop("e9-stale"), SequenceConflict)
    assert outcomes.pop("e9-second") == 4
    assert all(v == 2 for v in outcomes.values())
    assert [r.seq for r in await store.read("e4")] == [1]
    assert [r.type for r in await store.read("e9")] == ["step", "step", "x", "y"]


async def test_closed_store_refuses_use(store: Store) -> None:
    await store.append(turn("e1", 1))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosed):
        await store.append(turn("e1", 2))
    with pytest.raises(StoreClosed):
        await store.read("e1")
    with pytest.raises(StoreClosed):
        await store.list_executions()
