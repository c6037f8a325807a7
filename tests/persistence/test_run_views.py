"""The run views (tether.persistence.views) on every backend: they trail the index until a
projection takes the status changes, counts over hours come from counters and agree with the
rows, and projections cut anywhere (a small batch, a store reopened) converge to the view a
full rebuild from the index gives."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import textwrap
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.persistence import (
    ExecutionRow,
    IndexUpdate,
    MemoryStore,
    NewRecord,
    SqliteStore,
    Store,
    Turn,
)
from tether.persistence.pages import ExecutionQuery, execution_matches, position_of
from tether.persistence.views import HOUR_MS

pytestmark = pytest.mark.anyio


async def start(store: Store, eid: str, at: int, wf: str = "wf") -> None:
    index = IndexUpdate("running", at, workflow_id=wf, workflow_version="1", created_at_ms=at)
    await store.append(Turn(eid, 1, (NewRecord("started", b"s"),), index=index))


async def change(store: Store, eid: str, status: str, at: int) -> None:
    row = await store.get_execution(eid)
    assert row is not None
    index = IndexUpdate(status, at)  # type: ignore[arg-type]
    await store.append(Turn(eid, row.last_seq + 1, (NewRecord("x", b"x"),), index=index))


async def step(store: Store, eid: str) -> None:
    """A turn that changes no status (the common step): no feed row."""
    row = await store.get_execution(eid)
    assert row is not None
    await store.append(Turn(eid, row.last_seq + 1, (NewRecord("y", b"y"),)))


async def caught_up(store: Store) -> None:
    while await store.project_views(limit=3) == 3:
        pass
    assert await store.views_behind() == 0


async def index_rows(store: Store) -> list[ExecutionRow]:
    """The index, read whole: what a full rebuild of the views starts from."""
    rows: list[ExecutionRow] = []
    while page := await store.list_executions(limit=500, offset=len(rows)):
        rows += page
    return rows


async def view_rows(store: Store, query: ExecutionQuery) -> list[ExecutionRow]:
    rows: list[ExecutionRow] = []
    after = None
    while page := await store.page_executions(query, after, 7):
        rows += page
        after = position_of(page[-1])
    return rows


def brute_counts(rows: list[ExecutionRow], query: ExecutionQuery) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        if execution_matches(query, r, with_status=False):
            counts[r.status] = counts.get(r.status, 0) + 1
    return counts


#: Windows that cut hours in every way: none, whole hours, ragged ends, inside one hour.
WINDOWS = [
    (None, None), (0, None), (None, 2 * HOUR_MS), (HOUR_MS, 3 * HOUR_MS),
    (HOUR_MS // 2, 2 * HOUR_MS + 7), (HOUR_MS + 5, HOUR_MS + 9), (3 * HOUR_MS, HOUR_MS),
]  # fmt: skip


async def assert_rebuilt(store: Store) -> None:
    """The views equal a rebuild from the index: every row, its fields, and every count."""
    index = await index_rows(store)
    for wf in (None, "a", "b"):
        for lo, hi in WINDOWS:
            query = ExecutionQuery(workflow_id=wf, created_from_ms=lo, created_before_ms=hi)
            want = sorted(
                (r for r in index if execution_matches(query, r, with_status=True)),
                key=lambda r: (r.created_at_ms, r.execution_id),
                reverse=True,
            )
            assert await view_rows(store, query) == want, (wf, lo, hi)
            assert await store.count_executions(query) == brute_counts(index, query), (wf, lo, hi)


async def test_views_trail_the_index_until_projected(store: Store) -> None:
    await start(store, "e1", 10)
    assert (await store.get_execution("e1")) is not None  # the index: in the turn
    assert await store.count_executions(ExecutionQuery()) == {}  # the views: not yet
    assert await store.page_executions(ExecutionQuery()) == []
    assert await store.views_behind() == 1
    assert await store.project_views() == 1
    assert await store.count_executions(ExecutionQuery()) == {"running": 1}
    await step(store, "e1")  # no status change: nothing for the projector
    assert await store.views_behind() == 0
    await change(store, "e1", "paused", 20)
    await change(store, "e1", "running", 30)
    await change(store, "e1", "completed", 40)
    assert await store.count_executions(ExecutionQuery()) == {"running": 1}
    assert await store.views_behind() == 3
    assert await store.project_views(limit=1) == 1
    assert await store.project_views(limit=5) == 2  # fewer than the limit: caught up
    assert await store.project_views() == 0
    [row] = await store.page_executions(ExecutionQuery())
    assert (row.status, row.updated_at_ms, row.last_seq) == ("completed", 40, 5)
    assert await store.count_executions(ExecutionQuery(status="running")) == {"completed": 1}


async def test_counts_over_hours_agree_with_the_rows(store: Store) -> None:
    runs = [("r0", 0, "a"), ("r1", HOUR_MS - 1, "a"), ("r2", HOUR_MS, "b"),
            ("r3", HOUR_MS + 6, "a"), ("r4", 2 * HOUR_MS + 3, "b"),
            ("r5", 5 * HOUR_MS, "a")]  # fmt: skip
    for eid, at, wf in runs:
        await start(store, eid, at, wf)
    await change(store, "r1", "failed", 1)
    await change(store, "r3", "paused", 1)
    await change(store, "r4", "completed", 1)
    await caught_up(store)
    await assert_rebuilt(store)
    q = ExecutionQuery(created_from_ms=HOUR_MS // 2, created_before_ms=2 * HOUR_MS + 7)
    assert await store.count_executions(q) == {"failed": 1, "running": 1, "paused": 1,
                                               "completed": 1}  # fmt: skip
    searched = ExecutionQuery(id_contains="R", created_from_ms=HOUR_MS)  # no counter knows ids
    assert await store.count_executions(searched) == {"running": 2, "paused": 1, "completed": 1}


async def test_a_bad_limit_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="limit must be at least 1"):
        await store.project_views(limit=0)


# A run: an id, its creation hour and minute, its workflow; then status changes.
STATUSES = st.sampled_from(["paused", "running", "completed", "failed"])
OP = st.one_of(
    st.tuples(st.just("start"), st.integers(0, 9), st.integers(0, 4), st.integers(0, 59),
              st.sampled_from(["a", "b"])),
    st.tuples(st.just("change"), st.integers(0, 9), STATUSES),
    st.tuples(st.just("step"), st.integers(0, 9)),
    st.tuples(st.just("project"), st.integers(1, 4)),
    st.tuples(st.just("reopen")),
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, max_size=40))
def test_projections_cut_anywhere_converge_to_a_rebuild(ops: list[tuple[object, ...]]) -> None:
    """Property: however the projections are cut (any batch size, between any turns, the
    store closed and opened again: the SQLite projector resumes from its persisted position),
    once caught up the views equal a rebuild from the index, rows and counts (memory and
    SQLite alike)."""

    async def run(store: Store, reopen: object) -> None:
        started: set[int] = set()
        for op in ops:
            kind = op[0]
            if kind == "start" and op[1] not in started:
                _, n, hour, minute, wf = op
                await start(store, f"R{n}", int(hour) * HOUR_MS + int(minute) * 60_000, str(wf))
                started.add(int(str(n)))
            elif kind == "change" and op[1] in started:
                await change(store, f"R{op[1]}", str(op[2]), 1)
            elif kind == "step" and op[1] in started:
                await step(store, f"R{op[1]}")
            elif kind == "project":
                await store.project_views(limit=int(str(op[1])))
            elif kind == "reopen" and callable(reopen):
                store = await reopen(store)
        await caught_up(store)
        await assert_rebuilt(store)
        await store.close()

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "v.db"

            async def reopen(old: Store) -> Store:
                await old.close()
                new = SqliteStore(path)
                await new.open()
                return new

            memory = MemoryStore()
            await memory.open()
            await run(memory, None)
            sqlite = SqliteStore(path)
            await sqlite.open()
            await run(sqlite, reopen)

    anyio.run(main)


async def test_postgres_never_passes_a_feed_row_committed_late(postgres_url: str) -> None:
    """Two transactions writing status changes: the one that took its feed position first
    commits last. The second waits for it (the feed lock), so no projection in between can
    move past a position still to be committed, and both end up in the views."""
    psycopg = pytest.importorskip("psycopg")
    from tether.persistence.postgres import PostgresStore, view_ops

    store = PostgresStore(postgres_url)
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as early:
            # The early transaction: an index row and its feed row, the way a writer's batch
            # writes them, left uncommitted.
            await early.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (0x7E7E_0002,)
            )
            await early.execute(
                "INSERT INTO tether_executions (execution_id, workflow_id, workflow_version,"
                " status, created_at_ms, updated_at_ms, last_seq) VALUES"
                " ('early', 'a', '1', 'running', 5, 5, 0)"
            )
            await early.execute(
                "INSERT INTO tether_view_feed (execution_id, seq) VALUES ('early', 0)"
            )
            late_done = anyio.Event()

            async def late() -> None:
                await start(store, "late", 6, "a")
                late_done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(late)
                # The late turn cannot commit its feed row while the early one is open; a
                # projection now sees neither (and the position stays where it was).
                with anyio.fail_after(10):
                    while not (late_done.is_set() or await _waiting_for_feed_lock(early)):
                        await anyio.sleep(0.01)
                assert not late_done.is_set()
                # (The store's writer is held by the late turn: project on a connection of
                # its own, as another engine's projector would.)
                async with await psycopg.AsyncConnection.connect(postgres_url) as other:
                    assert await view_ops.project(other, 1000) == 0
                    await other.commit()
                await early.commit()
                with anyio.fail_after(10):
                    await late_done.wait()
        await caught_up(store)
        rows = await store.page_executions(ExecutionQuery())
        assert [r.execution_id for r in rows] == ["late", "early"]
        assert await store.count_executions(ExecutionQuery()) == {"running": 2}
    finally:
        await store.close()


async def _waiting_for_feed_lock(conn: object) -> bool:
    """Whether another session waits for the feed lock this connection holds."""
    cur = await conn.execute(  # type: ignore[attr-defined]
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s::oid AND objid = hashtext(current_schema())::oid",
        (0x7E7E_0002,),
    )
    [(n,)] = await cur.fetchall()
    return bool(n)


# A child that starts runs, changes their statuses and projects in small batches, forever,
# printing each projection's count once it has committed: the parent SIGKILLs it mid-stream.
_PROJECT_FOREVER = textwrap.dedent(
    """
    import asyncio, random, sys
    from tether.persistence import IndexUpdate, NewRecord, SqliteStore, Turn

    async def main():
        store = SqliteStore(sys.argv[1])
        await store.open()
        rng = random.Random(int(sys.argv[2]))
        last = {}
        for i in range(10**9):
            eid = f"K{rng.randrange(40)}"
            if eid not in last:
                at = rng.randrange(4) * 3_600_000 + rng.randrange(100)
                index = IndexUpdate("running", at, workflow_id=rng.choice("ab"),
                                    workflow_version="1", created_at_ms=at)
            else:
                index = IndexUpdate(rng.choice(["paused", "running", "completed"]), i)
            seq = last.get(eid, 0) + 1
            last[eid] = await store.append(Turn(eid, seq, (NewRecord("x", b"x"),), index=index))
            if i % 3 == 0:
                print(await store.project_views(limit=rng.randrange(1, 5)), flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_projector_killed_anywhere_resumes_to_a_rebuild(tmp_path: Path, seed: int) -> None:
    """SIGKILL between and inside projections (each its own transaction with the position):
    the store opened again resumes from the persisted position and ends equal to a rebuild."""
    db = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    async with await anyio.open_process(
        [sys.executable, "-c", _PROJECT_FOREVER, str(db), str(seed)], env=env
    ) as child:
        assert child.stdout is not None
        seen = b""
        with anyio.fail_after(60):
            while seen.count(b"\n") < 20 * seed:  # some projections committed
                seen += await child.stdout.receive()
        child.send_signal(signal.SIGKILL)
        await child.wait()
    store = SqliteStore(db)
    await store.open()
    try:
        await caught_up(store)
        await assert_rebuilt(store)
    finally:
        await store.close()
