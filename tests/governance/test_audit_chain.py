"""The audit chain the writer builds (I4): every row linked, in its own turn's transaction,
across restarts and batches; old journals stay readable and say where the chain starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from audit_runs import raw, rows_of, run_counters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.governance import KeyRing, verify_execution, verify_stored
from tether.persistence import NewRecord, SqliteStore, Turn, WorkItemRow
from tether.persistence.audit_chain import chain_link, genesis

pytestmark = pytest.mark.anyio


def _turn(eid: str, seq: int, n: int = 1) -> Turn:
    records = tuple(NewRecord("node_scheduled", f"{eid}:{seq + i}".encode()) for i in range(n))
    return Turn(eid, seq, records)


async def test_every_row_of_a_run_is_linked_to_the_one_before_I4(tmp_path: Path) -> None:
    db = tmp_path / "runtime.db"
    [eid] = await run_counters(db, 1)
    rows = rows_of(db, eid)
    previous = genesis(eid)
    for seq, type_, payload, _, link in rows:
        previous = chain_link(previous, seq, type_, payload)
        assert link == previous, f"row {seq}"
    async with SqliteStore(db, readonly=True) as store:
        verdict = await verify_stored(store, KeyRing(), eid)
    assert verdict.ok and verdict.chained_from == 1 and verdict.head_seq == len(rows)
    assert verdict.signed_through is None  # no key: chained, not signed


async def test_the_chain_goes_on_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with SqliteStore(db) as store:
        await store.append(_turn("e1", 1, 3))
    async with SqliteStore(db) as store:  # a new writer reads the last link back
        await store.append(_turn("e1", 4, 2))
        journal = await store.audit_log().read_chained("e1")
    verdict = verify_execution("e1", journal.rows, [], KeyRing(), journal.index_last_seq)
    assert verdict.ok and verdict.chained_from == 1 and verdict.head_seq == 5


async def test_an_old_journal_stays_readable_and_says_where_the_chain_starts(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    async with SqliteStore(db, audit=False) as store:  # as before the chain existed
        await store.append(_turn("e1", 1, 3))
    async with SqliteStore(db) as store:
        await store.append(_turn("e1", 4, 2))
        assert [r.seq for r in await store.read("e1")] == [1, 2, 3, 4, 5]
        verdict = await verify_stored(store, KeyRing(), "e1")
    assert verdict.ok and verdict.chained_from == 4
    assert "chained from seq 4" in verdict.describe()
    assert [link is None for *_, link in rows_of(db, "e1")] == [True] * 3 + [False] * 2


async def test_a_batch_retried_one_by_one_still_links_from_committed_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch whose transaction fails is retried turn by turn: links must be rebuilt from
    what committed, never from a rolled-back try's."""
    db = tmp_path / "t.db"
    item = WorkItemRow("e2/n/1", "e2", "n", "q", 1, 1, b"")
    async with SqliteStore(db) as store:
        await store.append(_turn("e1", 1))
        await store.append(_turn("e2", 1))
        # An item the writer has not seen, made behind its back: it presumes the items a
        # turn creates are new, so the batch's transaction fails on this one and every turn
        # of the batch is retried alone.
        raw(
            db,
            "INSERT INTO work_items VALUES"
            " ('e2/n/1', 'e2', 'n', 'q', 1, 1, x'', 'pending',"
            " 0, NULL, NULL, 0, 0, NULL, 0, 0)",
        )
        again = Turn("e2", 2, _turn("e2", 2).records, work_items=(item,))
        results = await asyncio.gather(
            store.append(_turn("e1", 2)), store.append(again), store.append(_turn("e1", 3))
        )
        assert results == [2, 2, 3]
        assert "retrying one by one" in caplog.text
        for eid in ("e1", "e2"):
            verdict = await verify_stored(store, KeyRing(), eid)
            assert verdict.ok and verdict.chained_from == 1, verdict.describe()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=30))
def test_concurrent_turns_of_many_executions_each_form_an_unbroken_chain(
    tmp_path_factory: object, plan: list[tuple[int, int]]
) -> None:
    """Turns of four executions appended at once, in any mix and size, share group commits;
    each execution's chain verifies from seq 1 to its end."""
    db = tmp_path_factory.mktemp("chain") / "t.db"  # type: ignore[attr-defined]

    async def scenario() -> None:
        async with SqliteStore(db) as store:
            next_seq = {f"e{i}": 1 for i in range(4)}
            appends = []
            for which, size in plan:
                eid = f"e{which}"
                appends.append(store.append(_turn(eid, next_seq[eid], size)))
                next_seq[eid] += size
            await asyncio.gather(*appends)
            for eid, following in next_seq.items():
                journal = await store.audit_log().read_chained(eid)
                verdict = verify_execution(eid, journal.rows, [], KeyRing())
                assert verdict.ok, verdict.describe()
                assert verdict.rows == following - 1

    asyncio.run(scenario())
