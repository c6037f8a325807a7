"""The work-item / lease table (I4, I5), run against both backends (memory, SQLite file)."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from tether.persistence import (
    NewRecord,
    SequenceConflict,
    Settle,
    StaleFence,
    StorageError,
    Store,
    Turn,
    UnknownWorkItem,
    WorkItemRow,
)

pytestmark = pytest.mark.anyio


def item(wid: str, queue: str = "q", not_before: int = 0, created: int = 0,
         attempt: int = 1) -> WorkItemRow:  # fmt: skip
    eid, node, dispatch = wid.split("/")
    return WorkItemRow(wid, eid, node, queue, attempt, int(dispatch), f"payload:{wid}".encode(),
                       not_before_ms=not_before, created_at_ms=created,
                       updated_at_ms=created)  # fmt: skip


class Journal:
    """Hands out the next expected_seq per execution, like an execution actor would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.next: dict[str, int] = {}

    def turn(self, eid: str, *, items: tuple[WorkItemRow, ...] = (),
             settles: tuple[Settle, ...] = (), seq: int | None = None) -> Turn:  # fmt: skip
        expected = seq if seq is not None else self.next.get(eid, 1)
        return Turn(eid, expected, (NewRecord("step", f"{eid}:{expected}".encode()),),
                    work_items=items, settles=settles)  # fmt: skip

    async def append(self, eid: str, **kw: object) -> int:
        last = await self.store.append(self.turn(eid, **kw))  # type: ignore[arg-type]
        self.next[eid] = last + 1
        return last


async def status(store: Store, wid: str) -> tuple[str, int]:
    row = await store.get_work_item(wid)
    assert row is not None
    return row.status, row.fence


async def test_turn_creates_pending_items_with_its_records_I4(store: Store) -> None:
    j = Journal(store)
    a, b = item("e1/fetch/1", created=5), item("e1/save/1", queue="io", created=6)
    await j.append("e1", items=(a, b))
    assert await store.get_work_item(a.work_item_id) == a
    assert await store.get_work_item(b.work_item_id) == b
    assert len(await store.read("e1")) == 1
    assert await store.get_work_item("e1/nope/1") is None
    # Re-deriving an existing id (recovery) leaves the row as it is, leased or not.
    [lease] = await store.grant("q", "w1", now_ms=10, ttl_ms=100, limit=5)
    await j.append("e1", items=(item("e1/fetch/1", queue="other", created=99),))
    assert await store.get_work_item(a.work_item_id) == lease.item
    # A refused turn creates nothing.
    with pytest.raises(SequenceConflict):
        await store.append(j.turn("e1", items=(item("e1/late/1"),), seq=1))
    assert await store.get_work_item("e1/late/1") is None


async def test_settle_with_the_current_fence_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/n/1"),))
    [lease] = await store.grant("q", "w1", now_ms=0, ttl_ms=100, limit=1)
    assert (lease.fence, lease.owner, lease.expires_ms) == (1, "w1", 100)
    assert lease.item.status == "leased" and lease.item.lease_owner == "w1"
    done = Settle("e1/n/1", "completed", fence=lease.fence, at_ms=50)
    await j.append("e1", settles=(done,))
    row = await store.get_work_item("e1/n/1")
    assert row is not None
    assert (row.status, row.fence, row.lease_owner, row.lease_expires_ms, row.updated_at_ms) == (
        "completed", 1, None, None, 50,
    )  # fmt: skip
    # A terminal row never changes again: the same settle, a heartbeat, a cancel.
    with pytest.raises(StaleFence) as info:
        await j.append("e1", settles=(done,))
    assert (info.value.presented, info.value.current, info.value.status) == (1, 1, "completed")
    with pytest.raises(StaleFence):
        await store.heartbeat("e1/n/1", 1, now_ms=60, ttl_ms=100)
    with pytest.raises(StaleFence) as info:
        await j.append("e1", settles=(Settle("e1/n/1", "cancelled"),))
    assert info.value.presented is None and "without a fence" in str(info.value)
    assert "status completed" in str(info.value)
    assert await status(store, "e1/n/1") == ("completed", 1)


async def test_stale_fence_refuses_the_whole_turn_others_commit_I5(store: Store) -> None:
    j = Journal(store)
    for i in range(6):
        await j.append(f"e{i}", items=(item(f"e{i}/n/1"),))
    leases = {x.work_item_id: x for x in await store.grant("q", "w", 0, 100, limit=10)}
    assert len(leases) == 6
    # e3's lease is reclaimed and granted again: its first holder now has a stale fence.
    await j.append("e3", settles=(Settle("e3/n/1", "parked", fence=1),))
    [again] = await store.grant("q", "w2", 0, 100, limit=10)
    assert (again.work_item_id, again.fence) == ("e3/n/1", 2)
    outcomes: dict[str, object] = {}

    async def attempt(eid: str, t: Turn) -> None:
        try:
            outcomes[eid] = await store.append(t)
        except StorageError as exc:
            outcomes[eid] = exc

    async with anyio.create_task_group() as tg:  # queued together: one SQLite batch
        for i in range(6):
            t = j.turn(f"e{i}", settles=(Settle(f"e{i}/n/1", "completed", fence=1),),
                       items=(item(f"e{i}/next/1"),))  # fmt: skip
            tg.start_soon(attempt, f"e{i}", t)
    stale = outcomes.pop("e3")
    assert isinstance(stale, StaleFence)
    assert (stale.work_item_id, stale.presented, stale.current, stale.status) == (
        "e3/n/1", 1, 2, "leased",
    )  # fmt: skip
    for part in ("e3/n/1", "fence 1 is refused", "current fence 2", "status leased"):
        assert part in str(stale)
    assert list(outcomes.values()) == [2, 2, 2, 2, 2]
    # Nothing of the refused turn was written: no record, no new item, no settle.
    assert len(await store.read("e3")) == 2
    assert await store.get_work_item("e3/next/1") is None
    assert await status(store, "e3/n/1") == ("leased", 2)
    for i in (0, 1, 2, 4, 5):
        assert await status(store, f"e{i}/n/1") == ("completed", 1)
        assert await store.get_work_item(f"e{i}/next/1") is not None
    # The refused turn's seq is still free for the actor's next try.
    j.next = {k: v + 1 if k != "e3" else v for k, v in j.next.items()}
    await j.append("e3", settles=(Settle("e3/n/1", "completed", fence=2),))


async def test_settles_in_one_batch_are_checked_against_each_other_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/n/1"),))
    await j.append("e2", items=(item("e2/n/1"),))
    await store.grant("q", "w", 0, 100, limit=10)
    results: dict[str, object] = {}

    async def attempt(key: str, t: Turn) -> None:
        try:
            results[key] = await store.append(t)
        except StaleFence as exc:
            results[key] = exc

    # The worker's completion and the engine's cancel race: whichever is queued first wins.
    async with anyio.create_task_group() as tg:
        done = Settle("e1/n/1", "completed", fence=1)
        tg.start_soon(attempt, "complete", j.turn("e1", settles=(done,)))
        tg.start_soon(attempt, "cancel", j.turn("e2", settles=(Settle("e1/n/1", "cancelled"),)))
    assert results["complete"] == 2 and isinstance(results["cancel"], StaleFence)
    assert await status(store, "e1/n/1") == ("completed", 1)
    # A turn may settle an item it creates (inserts apply before settles).
    await j.append("e2", items=(item("e2/x/1"),), settles=(Settle("e2/x/1", "cancelled"),))
    assert await status(store, "e2/x/1") == ("cancelled", 0)


async def test_settle_without_a_fence_applies_to_any_open_row(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/a/1"), item("e1/b/1"), item("e1/c/1")))
    leases = await store.grant("q", "w", 0, 100, limit=2)  # a and b
    await j.append("e1", settles=(Settle("e1/b/1", "parked", fence=1, not_before_ms=10),))
    cancel = tuple(Settle(f"e1/{n}/1", "cancelled", error="user") for n in "abc")
    await j.append("e1", settles=cancel)  # leased, parked, pending
    for n in "abc":
        row = await store.get_work_item(f"e1/{n}/1")
        assert row is not None and (row.status, row.lease_owner, row.last_error) == (
            "cancelled", None, "user",
        )  # fmt: skip
    # The worker that held a finds out at its next heartbeat or settle.
    with pytest.raises(StaleFence):
        await store.heartbeat("e1/a/1", leases[0].fence, 10, 100)
    with pytest.raises(StaleFence):
        await j.append("e1", settles=(Settle("e1/a/1", "completed", fence=leases[0].fence),))


async def test_unknown_or_malformed_settles_are_refused(store: Store) -> None:
    j = Journal(store)
    with pytest.raises(UnknownWorkItem, match="work item e1/ghost/1: no such work item"):
        await j.append("e1", settles=(Settle("e1/ghost/1", "completed", fence=1),))
    with pytest.raises(UnknownWorkItem):
        await j.append("e1", settles=(Settle("e1/ghost/1", "cancelled"),))
    assert await store.read("e1") == []
    with pytest.raises(StorageError, match="cannot be settled as 'pending'"):
        await j.append("e1", settles=(Settle("e1/x/1", "pending"),))
    leased = WorkItemRow("e1/y/1", "e1", "y", "q", 1, 1, b"", status="leased")
    with pytest.raises(StorageError, match="created pending"):
        await j.append("e1", items=(leased,))
    with pytest.raises(StorageError, match="ttl_ms"):
        await store.grant("q", "w", 0, 0, limit=1)
    with pytest.raises(UnknownWorkItem):
        await store.heartbeat("e1/ghost/1", 1, 0, 10)
    assert await store.grant("q", "w", 0, 10, limit=0) == []


async def test_park_then_grant_again_with_fence_plus_one_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/llm/1", attempt=2),))
    [lease] = await store.grant("q", "w1", 0, 100, limit=1)
    park = Settle("e1/llm/1", "parked", fence=lease.fence, not_before_ms=500, error="429",
                  at_ms=20)  # fmt: skip
    await j.append("e1", settles=(park,))
    row = await store.get_work_item("e1/llm/1")
    assert row is not None
    assert (row.status, row.fence, row.parks, row.attempt, row.not_before_ms) == (
        "parked", 1, 1, 2, 500,
    )  # fmt: skip
    assert (row.lease_owner, row.lease_expires_ms, row.last_error) == (None, None, "429")
    assert await store.grant("q", "w2", now_ms=499, ttl_ms=100, limit=1) == []
    [again] = await store.grant("q", "w2", now_ms=500, ttl_ms=100, limit=1)
    assert (again.fence, again.owner, again.expires_ms) == (2, "w2", 600)
    assert (again.item.attempt, again.item.parks, again.item.status) == (2, 1, "leased")
    with pytest.raises(StaleFence):  # the first holder's fence is stale now
        await j.append("e1", settles=(Settle("e1/llm/1", "completed", fence=1),))
    # Parking works without a lease too (an engine-side backoff of a pending item).
    await j.append("e1", items=(item("e1/other/1"),))
    await j.append("e1", settles=(Settle("e1/other/1", "parked", not_before_ms=7),))
    assert await status(store, "e1/other/1") == ("parked", 0)


async def test_grant_order_limit_queue_and_not_before(store: Store) -> None:
    j = Journal(store)
    rows = (
        item("e1/late/1", not_before=30, created=1),
        item("e1/b/1", created=5),
        item("e1/a/1", created=5),  # same created_at: id breaks the tie
        item("e1/old/1", created=1),
        item("e1/future/1", not_before=1000, created=0),
        item("e1/io/1", queue="io", created=0),
    )
    await j.append("e1", items=rows)
    first = await store.grant("q", "w1", now_ms=100, ttl_ms=50, limit=2)
    assert [x.work_item_id for x in first] == ["e1/old/1", "e1/a/1"]
    assert all((x.fence, x.expires_ms, x.owner) == (1, 150, "w1") for x in first)
    rest = await store.grant("q", "w2", now_ms=100, ttl_ms=50, limit=10)
    assert [x.work_item_id for x in rest] == ["e1/b/1", "e1/late/1"]  # not "future", not "io"
    assert await store.grant("q", "w3", now_ms=100, ttl_ms=50, limit=10) == []
    [io] = await store.grant("io", "w4", now_ms=0, ttl_ms=50, limit=10)
    assert io.work_item_id == "e1/io/1"
    [future] = await store.grant("q", "w5", now_ms=1000, ttl_ms=50, limit=10)
    assert future.work_item_id == "e1/future/1"
    assert await store.grant("missing", "w", 10_000, 50, 10) == []


async def test_a_grant_skips_the_items_its_worker_declined(store: Store) -> None:
    """A worker that does not serve an item is never granted it again; others are."""
    j = Journal(store)
    await j.append("e1", items=(item("e1/a/1", created=1), item("e1/b/1", created=2)))
    [got] = await store.grant("q", "w1", now_ms=100, ttl_ms=50, limit=5, exclude=["e1/a/1"])
    assert got.work_item_id == "e1/b/1"
    assert await store.grant("q", "w1", 100, 50, 5, exclude=("e1/a/1",)) == []
    [other] = await store.grant("q", "w2", now_ms=100, ttl_ms=50, limit=5)
    assert other.work_item_id == "e1/a/1"


async def test_heartbeat_extends_and_refuses_stale_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/n/1"),))
    [lease] = await store.grant("q", "w1", now_ms=0, ttl_ms=100, limit=1)
    assert await store.heartbeat("e1/n/1", lease.fence, now_ms=80, ttl_ms=100) == 180
    row = await store.get_work_item("e1/n/1")
    assert row is not None and (row.lease_expires_ms, row.updated_at_ms) == (180, 80)
    # Past its expiry but not yet reclaimed, the lease is still the worker's.
    assert await store.heartbeat("e1/n/1", lease.fence, now_ms=500, ttl_ms=100) == 600
    with pytest.raises(StaleFence) as info:
        await store.heartbeat("e1/n/1", lease.fence + 1, now_ms=500, ttl_ms=100)
    assert str(info.value) == (
        "work item e1/n/1: fence 2 is refused as stale (current fence 1, status leased)"
    )
    # Reclaimed (settled failed with the presented fence): the old holder is refused.
    await j.append("e1", settles=(Settle("e1/n/1", "failed", fence=lease.fence, error="lost"),))
    with pytest.raises(StaleFence) as info:
        await store.heartbeat("e1/n/1", lease.fence, now_ms=700, ttl_ms=100)
    assert info.value.status == "failed"
    # Many heartbeats at once share commits and each gets its own answer.
    await j.append("e1", items=tuple(item(f"e1/m/{k}") for k in range(20)))
    leases = await store.grant("q", "w", now_ms=0, ttl_ms=10, limit=50)
    got = await _gather(store.heartbeat(x.work_item_id, x.fence - (k == 3), 5, 100)
                        for k, x in enumerate(leases))  # fmt: skip
    assert [type(g).__name__ for g in got].count("StaleFence") == 1
    assert [g for g in got if isinstance(g, int)] == [105] * 19


async def _gather(coros: object) -> list[object]:
    out: list[object] = []

    async def one(i: int, coro: object) -> None:
        try:
            out[i] = await coro  # type: ignore[misc]
        except StorageError as exc:
            out[i] = exc

    items = list(coros)  # type: ignore[call-overload]
    out.extend([None] * len(items))
    async with anyio.create_task_group() as tg:
        for i, coro in enumerate(items):
            tg.start_soon(one, i, coro)
    return out


async def test_expired_leases_and_reclaim_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=tuple(item(f"e1/n/{k}", created=k) for k in range(4)))
    for k, ttl in enumerate((30, 10, 20, 100)):
        [_] = await store.grant("q", f"w{k}", now_ms=0, ttl_ms=ttl, limit=1)
    assert await store.expired_leases(now_ms=9) == []
    expired = await store.expired_leases(now_ms=30)
    assert [(r.work_item_id, r.lease_expires_ms) for r in expired] == [
        ("e1/n/1", 10), ("e1/n/2", 20), ("e1/n/0", 30),
    ]  # fmt: skip
    assert [r.work_item_id for r in await store.expired_leases(now_ms=30, limit=1)] == ["e1/n/1"]
    # Reclaim the way the scheduler does: settle failed with the fence it saw.
    await j.append("e1", settles=tuple(Settle(r.work_item_id, "failed", fence=r.fence,
                                              error="lease expired") for r in expired))  # fmt: skip
    assert await store.expired_leases(now_ms=30) == []
    assert [r.work_item_id for r in await store.expired_leases(now_ms=100)] == ["e1/n/3"]


async def test_open_and_listed_work_items(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/a/1", created=1), item("e1/b/1", queue="io", created=2),
                                item("e1/c/1", created=3)))  # fmt: skip
    await j.append("e2", items=(item("e2/a/1", created=4), item("e2/b/1", created=5)))
    await store.grant("q", "w", now_ms=0, ttl_ms=10, limit=1)  # e1/a/1
    await j.append("e1", settles=(Settle("e1/c/1", "parked", not_before_ms=9),))
    await j.append("e2", settles=(Settle("e2/a/1", "dead", error="too many attempts"),
                                  Settle("e2/b/1", "completed")))  # fmt: skip
    open_ids = [r.work_item_id for r in await store.open_work_items()]
    assert open_ids == ["e1/a/1", "e1/b/1", "e1/c/1"]
    assert [r.work_item_id for r in await store.open_work_items("io")] == ["e1/b/1"]
    [dead] = await store.list_work_items(status="dead")
    assert (dead.work_item_id, dead.last_error) == ("e2/a/1", "too many attempts")
    every = [r.work_item_id for r in await store.list_work_items()]
    assert every == ["e2/b/1", "e2/a/1", "e1/c/1", "e1/b/1", "e1/a/1"]
    page = await store.list_work_items(execution_id="e1", limit=2, offset=1)
    assert [r.work_item_id for r in page] == ["e1/b/1", "e1/a/1"]
    assert [r.work_item_id for r in await store.list_work_items(queue="io")] == ["e1/b/1"]
    assert await store.list_work_items(status="leased", queue="io") == []


async def test_release_leases_keeps_fence_and_attempt_I5(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/a/1"), item("e1/b/1"), item("e1/c/1")))
    [a] = await store.grant("q", "local", now_ms=10, ttl_ms=100, limit=1)
    [b] = await store.grant("q", "remote-1", now_ms=10, ttl_ms=100, limit=1)
    released = await store.release_leases("local", now_ms=20)
    assert [r.work_item_id for r in released] == [a.work_item_id]
    assert await status(store, a.work_item_id) == ("pending", a.fence)
    assert await status(store, b.work_item_id) == ("leased", b.fence)
    # The old lease's fence is refused; the next grant outbids it.
    with pytest.raises(StaleFence):
        await j.append("e1", settles=(Settle(a.work_item_id, "completed", fence=a.fence),))
    again = await store.grant("q", "local", now_ms=30, ttl_ms=100, limit=2)
    assert {(g.work_item_id, g.fence) for g in again} >= {(a.work_item_id, a.fence + 1)}
    await j.append("e1", settles=(Settle(a.work_item_id, "completed", fence=a.fence + 1),))
    assert await status(store, a.work_item_id) == ("completed", a.fence + 1)
    assert await store.release_leases("nobody", now_ms=40) == []


async def test_item_leased_in_the_turn_that_creates_it_I4_I5(store: Store) -> None:
    j = Journal(store)
    leased = msgspec.structs.replace(
        item("e1/a/1"), status="leased", lease_owner="local", lease_expires_ms=99, fence=1
    )
    await j.append("e1", items=(leased, item("e1/b/1")))
    assert await status(store, "e1/a/1") == ("leased", 1)
    granted = await store.grant("q", "w", now_ms=0, ttl_ms=10, limit=5)
    assert [g.work_item_id for g in granted] == ["e1/b/1"]  # the leased one is not granted again
    with pytest.raises(StaleFence):
        await j.append("e1", settles=(Settle("e1/a/1", "completed", fence=0),))
    await j.append("e1", settles=(Settle("e1/a/1", "completed", fence=1),))
    assert await status(store, "e1/a/1") == ("completed", 1)
    no_fence = msgspec.structs.replace(leased, work_item_id="e1/c/1", fence=0)
    with pytest.raises(StorageError, match="fence >= 1"):
        await j.append("e1", items=(no_fence,))


async def test_reissue_inserts_absent_pending_items_without_records_I3(store: Store) -> None:
    j = Journal(store)
    await j.append("e1", items=(item("e1/a/1"),))
    [a] = await store.grant("q", "w1", now_ms=10, ttl_ms=100, limit=1)
    b = item("e1/b/1", created=20)
    # An existing id (leased here) is left alone; an absent one is inserted, pending.
    assert await store.reissue([item("e1/a/1", queue="other"), b]) == 1
    assert await store.get_work_item(a.work_item_id) == a.item
    assert await store.get_work_item(b.work_item_id) == b
    assert len(await store.read("e1")) == 1  # no records
    assert await store.reissue([b]) == 0
    assert await store.reissue([]) == 0
    # The writer knows the reissued item at once: granted and settled with its fence.
    [lease] = await store.grant("q", "w2", now_ms=30, ttl_ms=100, limit=5)
    assert (lease.work_item_id, lease.fence) == (b.work_item_id, 1)
    with pytest.raises(StaleFence):
        await j.append("e1", settles=(Settle(b.work_item_id, "completed", fence=0),))
    await j.append("e1", settles=(Settle(b.work_item_id, "completed", fence=1),))
    assert await status(store, b.work_item_id) == ("completed", 1)


async def test_concurrent_reissues_count_each_new_id_once_I3(store: Store) -> None:
    """A restart reissues for every execution at once, so the calls share a batch: each
    gets the count of the ids it was first to add, existing ids count for none."""
    await Journal(store).append("e1", items=(item("e1/a/1"),))
    calls = [["e1/a/1", "e2/b/1"], ["e2/b/1", "e3/c/1"], ["e1/a/1"], ["e4/d/1"]]
    counts: list[int] = [0] * len(calls)

    async def reissue(i: int) -> None:
        counts[i] = await store.reissue([item(wid) for wid in calls[i]])

    async with anyio.create_task_group() as tg:
        for i in range(len(calls)):
            tg.start_soon(reissue, i)
    assert counts == [1, 1, 0, 1]
    for wid in ("e2/b/1", "e3/c/1", "e4/d/1"):
        assert await status(store, wid) == ("pending", 0)


async def test_reissue_refuses_leased_rows_I10(store: Store) -> None:
    leased = msgspec.structs.replace(
        item("e1/a/1"), status="leased", lease_owner="local", lease_expires_ms=9, fence=1
    )
    with pytest.raises(StorageError, match="pending without a lease"):
        await store.reissue([item("e1/b/1"), leased])
    with pytest.raises(StorageError, match="queue must be a non-empty string"):
        await store.reissue([item("e1/b/1"), msgspec.structs.replace(item("e1/c/1"), queue="")])
    assert await store.get_work_item("e1/b/1") is None
