"""Execution ownership between engines sharing one Postgres schema (I5 for executions, I6).

Two stores with engine ids on one fresh schema stand for two engines: a turn is written only
by the engine owning its execution with the fence it holds; an expired engine's executions
are claimed by another (fence + 1), after which its appends are refused in their own
transaction, and each orphan is claimed by one engine only (SKIP LOCKED). A single engine
and a shared one exclude each other; SQLite refuses a shared engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from tether.persistence import (
    DatabaseLocked,
    IndexUpdate,
    NewRecord,
    Turn,
    WorkItemRow,
    open_store,
)
from tether.persistence.ownership import OwnedElsewhere, OwnershipLost

psycopg = pytest.importorskip("psycopg", reason="the Postgres driver: pip install -e '.[postgres]'")

from tether.persistence.postgres import PostgresStore  # noqa: E402

pytestmark = pytest.mark.anyio


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def first(eid: str) -> Turn:
    index = IndexUpdate("running", 1, workflow_id="wf", workflow_version="1", created_at_ms=1)
    return Turn(eid, 1, (NewRecord("execution_started", b"{}"),), index=index)


def step(eid: str, seq: int) -> Turn:
    return Turn(eid, seq, (NewRecord("node_completed", f"{seq}".encode()),))


def expire(url: str, engine_id: str) -> None:
    """The engine's row runs out now (as it does when the engine stops renewing it)."""
    sql(url, "UPDATE tether_engines SET expires_ms = 0 WHERE engine_id = %s", (engine_id,))


async def test_a_turn_is_written_only_by_the_owner_with_its_fence_I5_I6(
    postgres_url: str,
) -> None:
    async with (
        PostgresStore(postgres_url, engine_id="eng_a") as a,
        PostgresStore(postgres_url, engine_id="eng_b") as b,
    ):
        await a.ownership.register(10_000)
        await b.ownership.register(10_000)
        await a.append(first("e1"))  # its first turn makes engine a the owner (fence 1)
        assert a.fences is not None and a.fences.held == {"e1": 1}
        assert sql(postgres_url, "SELECT engine_id, fence FROM tether_owners") == [("eng_a", 1)]
        with pytest.raises(OwnershipLost, match="owned by engine eng_a"):
            await b.append(step("e1", 2))
        with pytest.raises(OwnedElsewhere, match="eng_a"):
            await b.ownership.acquire("e1")
        assert await a.append(step("e1", 2)) == 2
        assert [r.seq for r in await b.read("e1")] == [1, 2]


async def test_an_expired_engines_runs_are_claimed_and_its_late_appends_refused(
    postgres_url: str,
) -> None:
    async with (
        PostgresStore(postgres_url, engine_id="eng_a") as a,
        PostgresStore(postgres_url, engine_id="eng_b") as b,
    ):
        await a.ownership.register(10_000)
        await b.ownership.register(10_000)
        for eid in ("e1", "e2", "e3"):
            await a.append(first(eid))
        assert await b.ownership.claim_orphans(100) == []  # a is alive: nothing to claim
        expire(postgres_url, "eng_a")
        assert sorted(await b.ownership.claim_orphans(100)) == ["e1", "e2", "e3"]
        assert b.fences is not None and b.fences.held == {"e1": 2, "e2": 2, "e3": 2}
        with pytest.raises(OwnershipLost, match="owned by engine eng_b"):
            await a.append(step("e1", 2))  # a, paused past its TTL, comes back: refused
        assert a.fences is not None and "e1" not in a.fences.held  # and it let go
        assert await b.append(step("e1", 2)) == 2
        # a renews: it learns it had lapsed, and which executions it lost
        assert await a.ownership.renew(10_000) is True
        assert sorted(await a.ownership.reconcile()) == ["e2", "e3"]
        assert await a.ownership.renew(10_000) is False
        assert [r.seq for r in await a.read("e1")] == [1, 2]


async def test_each_orphan_is_claimed_by_one_engine(postgres_url: str) -> None:
    async with (
        PostgresStore(postgres_url, engine_id="eng_a") as a,
        PostgresStore(postgres_url, engine_id="eng_b") as b,
        PostgresStore(postgres_url, engine_id="eng_c") as c,
    ):
        for s in (a, b, c):
            await s.ownership.register(10_000)
        eids = [f"e{i:03d}" for i in range(60)]
        for eid in eids:
            await a.append(first(eid))
        expire(postgres_url, "eng_a")
        got_b: list[str] = []
        got_c: list[str] = []
        while len(got_b) + len(got_c) < len(eids):  # both claim in small bites, interleaved
            got_b += await b.ownership.claim_orphans(7)
            got_c += await c.ownership.claim_orphans(5)
        assert sorted(got_b + got_c) == eids and not set(got_b) & set(got_c)
        fences = dict(sql(postgres_url, "SELECT execution_id, fence FROM tether_owners"))
        assert set(fences.values()) == {2}


async def test_grants_take_only_the_items_of_owned_executions(postgres_url: str) -> None:
    def item(wid: str, eid: str) -> WorkItemRow:
        return WorkItemRow(wid, eid, "n", "q", 1, 1, b"{}", "pending", 0, None, None, 0, 0,
                           None, 1, 1)  # fmt: skip

    async with (
        PostgresStore(postgres_url, engine_id="eng_a") as a,
        PostgresStore(postgres_url, engine_id="eng_b") as b,
    ):
        await a.ownership.register(10_000)
        await b.ownership.register(10_000)
        await a.append(Turn("ea", 1, first("ea").records, index=first("ea").index,
                            work_items=(item("wa", "ea"),)))  # fmt: skip
        await b.append(Turn("eb", 1, first("eb").records, index=first("eb").index,
                            work_items=(item("wb", "eb"),)))  # fmt: skip
        assert [g.item.work_item_id for g in await a.grant("q", "w1", 10, 5_000, 10)] == ["wa"]
        assert [g.item.work_item_id for g in await b.grant("q", "w2", 10, 5_000, 10)] == ["wb"]


async def test_a_single_engine_and_shared_engines_exclude_each_other(postgres_url: str) -> None:
    async with PostgresStore(postgres_url, engine_id="eng_a"):
        async with PostgresStore(postgres_url, engine_id="eng_b"):
            pass  # shared engines hold the lock together
        with pytest.raises(DatabaseLocked, match="--shared"):
            await PostgresStore(postgres_url, lock_wait_ms=100).open()
    async with PostgresStore(postgres_url):
        with pytest.raises(DatabaseLocked, match="--shared"):
            await PostgresStore(postgres_url, engine_id="eng_a", lock_wait_ms=100).open()


async def test_sqlite_refuses_a_shared_engine(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="only a Postgres database"):
        await open_store(f"sqlite:///{tmp_path}/one.db", engine_id="eng_a")
