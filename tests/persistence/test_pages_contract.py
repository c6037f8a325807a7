"""Keyset pages and counts (tether.persistence.pages) on every backend: filters, both
orders, and the promise that paging visits every row once even while rows are added. Pages
and counts read the run views; each run added here is projected at once (the projector's
own promises: tests/persistence/test_run_views.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.persistence import (
    IndexUpdate,
    MemoryStore,
    NewRecord,
    SqliteStore,
    Store,
    Turn,
    WorkItemRow,
)
from tether.persistence.pages import (
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
    execution_matches,
    position_of,
)

pytestmark = pytest.mark.anyio


async def add_run(store: Store, eid: str, at: int, status: str = "running",
                  wf: str = "wf") -> None:  # fmt: skip
    index = IndexUpdate(status, at, workflow_id=wf, workflow_version="1", created_at_ms=at)
    await store.append(Turn(eid, 1, (NewRecord("started", eid.encode()),), index=index))
    await store.project_views()  # pages and counts read the run views: a projector caught up


async def all_pages(store: Store, query: ExecutionQuery, size: int,
                    oldest_first: bool = False) -> list[str]:  # fmt: skip
    seen: list[str] = []
    after: PagePosition | None = None
    while page := await store.page_executions(query, after, size, oldest_first):
        assert len(page) <= size
        assert len(seen) < 1000, "paging does not move on"
        seen += [r.execution_id for r in page]
        after = position_of(page[-1])
    return seen


async def test_filters_orders_and_pages(store: Store) -> None:
    # Two runs share a millisecond: the id breaks the tie, and a page may end between them.
    runs = [("E0", 100, "completed", "alpha"), ("E1", 101, "paused", "beta"),
            ("x_2", 101, "paused", "alpha"), ("E3", 103, "failed", "alpha"),
            ("e%4", 104, "paused", "beta")]  # fmt: skip
    for eid, at, status, wf in runs:
        await add_run(store, eid, at, status, wf)
    newest = ["e%4", "E3", "x_2", "E1", "E0"]
    for size in (1, 2, 3, 10):
        assert await all_pages(store, ExecutionQuery(), size) == newest
        assert await all_pages(store, ExecutionQuery(), size, oldest_first=True) == newest[::-1]
    assert await all_pages(store, ExecutionQuery(status="paused"), 1) == ["e%4", "x_2", "E1"]
    assert await all_pages(store, ExecutionQuery(workflow_id="alpha"), 2) == ["E3", "x_2", "E0"]
    window = ExecutionQuery(created_from_ms=101, created_before_ms=104)
    assert await all_pages(store, window, 2) == ["E3", "x_2", "E1"]
    # The id search ignores ASCII case, and takes % and _ as themselves, not as wildcards.
    assert await all_pages(store, ExecutionQuery(id_contains="e"), 5) == ["e%4", "E3", "E1", "E0"]
    assert await all_pages(store, ExecutionQuery(id_contains="%"), 5) == ["e%4"]
    assert await all_pages(store, ExecutionQuery(id_contains="_"), 5) == ["x_2"]
    assert await all_pages(store, ExecutionQuery(id_contains="x_2", status="failed"), 5) == []
    # Counts per status leave the status filter out, and keep the others.
    assert await store.count_executions(ExecutionQuery()) == {
        "completed": 1, "paused": 3, "failed": 1,
    }  # fmt: skip
    assert await store.count_executions(ExecutionQuery(status="failed", workflow_id="beta")) == {
        "paused": 2
    }
    assert await store.count_executions(ExecutionQuery(id_contains="nothing")) == {}


async def test_pages_miss_nothing_while_runs_arrive(store: Store) -> None:
    for i in range(10):
        await add_run(store, f"old{i:02}", 100 + i)
    seen: list[str] = []
    after = None
    n = 0
    while page := await store.page_executions(ExecutionQuery(), after, 3):
        seen += [r.execution_id for r in page]
        after = position_of(page[-1])
        n += 1
        await add_run(store, f"new{n:02}", 1000 + n)  # newer than every page read so far
    assert seen == [f"old{i:02}" for i in reversed(range(10))]


def item(wid: str, at: int, status: str = "pending", queue: str = "q") -> WorkItemRow:
    return WorkItemRow(wid, "e1", wid, queue, 1, 1, b"", status=status, created_at_ms=at,
                       updated_at_ms=at)  # fmt: skip


async def test_work_item_pages_and_queue_depths(store: Store) -> None:
    rows = [item("w1", 10), item("w2", 11, queue="mcp"), item("w3", 11),
            item("w4", 12, queue="mcp")]  # fmt: skip
    await store.append(Turn("e1", 1, (NewRecord("a", b"a"),), work_items=tuple(rows)))
    await store.grant("mcp", "worker-1", now_ms=20, ttl_ms=1000, limit=1)  # w2 leased
    seen = []
    after = None
    while page := await store.page_work_items(WorkItemQuery(), after, 3):
        seen += [r.work_item_id for r in page]
        after = position_of(page[-1])
    assert seen == ["w4", "w3", "w2", "w1"]
    mcp = await store.page_work_items(WorkItemQuery(queue="mcp", status="pending"))
    assert [r.work_item_id for r in mcp] == ["w4"]
    assert await store.count_work_items() == {
        ("q", "pending"): 2, ("mcp", "pending"): 1, ("mcp", "leased"): 1,
    }  # fmt: skip


ID_CHARS = st.sampled_from("aAbB_%x1")
RUN = st.tuples(st.text(ID_CHARS, min_size=1, max_size=4), st.integers(0, 5),
                st.sampled_from(["running", "paused", "failed"]),
                st.sampled_from(["w1", "w2"]))  # fmt: skip
QUERY = st.builds(
    ExecutionQuery,
    status=st.none() | st.sampled_from(["running", "paused", "failed"]),
    workflow_id=st.none() | st.sampled_from(["w1", "w2"]),
    id_contains=st.none() | st.text(ID_CHARS, min_size=1, max_size=2),
    created_from_ms=st.none() | st.integers(0, 5),
    created_before_ms=st.none() | st.integers(0, 6),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(RUN, max_size=12, unique_by=lambda r: r[0]), query=QUERY,
       size=st.integers(1, 4), oldest_first=st.booleans())  # fmt: skip
def test_paging_equals_the_filtered_listing_on_every_backend(
    runs: list[tuple[str, int, str, str]], query: ExecutionQuery, size: int, oldest_first: bool
) -> None:
    """Property: whatever the rows, filter and page size, the pages joined are exactly the
    rows the filter matches, each once, in (created_at_ms, id) order; SQLite agrees with the
    memory backend and the filter's definition (a case-folding or escaping slip shows here)."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for store in (MemoryStore(), SqliteStore(Path(tmp) / "p.db")):
                await store.open()
                try:
                    rows = []
                    for eid, at, status, wf in runs:
                        await add_run(store, eid, at, status, wf)
                        got = await store.get_execution(eid)
                        assert got is not None
                        rows.append(got)
                    want = sorted(
                        (r for r in rows if execution_matches(query, r, with_status=True)),
                        key=lambda r: (r.created_at_ms, r.execution_id),
                        reverse=not oldest_first,
                    )
                    got_ids = await all_pages(store, query, size, oldest_first)
                    assert got_ids == [r.execution_id for r in want], type(store).__name__
                    counts: dict[str, int] = {}
                    for r in rows:
                        if execution_matches(query, r, with_status=False):
                            counts[r.status] = counts.get(r.status, 0) + 1
                    assert await store.count_executions(query) == counts
                finally:
                    await store.close()

    anyio.run(main)
