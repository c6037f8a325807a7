"""Forks on the embedded runtime: from every record of a finished run, from a step in
flight, from a pending approval, for graphs and code-first bodies; bad forks write nothing."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from tether import ExecutionNotFound, Runtime
from tether.runtime.records import ExecutionStarted, NodeCompleted
from tether.runtime.time_travel import ForkRefused, RecordNotFound
from tether.testing import check_replay

from .travel_flows import APPROVAL, CALLS, CHAIN, GATE, GATED, bump, code_chain, slow

pytestmark = pytest.mark.anyio


def _completed_by(journal: list[object], at_seq: int) -> Counter[str]:
    """Work nodes whose completion is in records 1..at_seq."""
    done: Counter[str] = Counter()
    for entry in journal[:at_seq]:
        rec = entry.record  # type: ignore[attr-defined]
        if isinstance(rec, NodeCompleted) and rec.dispatch > 0:
            done[rec.node_id] += 1
    return done


async def test_a_fork_at_every_record_of_a_chain_ends_as_the_origin_did_I2_I3(
    db_url: str,
) -> None:
    CALLS.clear()
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(CHAIN, {"n": 0})
        assert await run.result() == {"n": 3}
        journal = await rt.journal(run.id)
        for at in range(1, len(journal)):  # the last record ends the run: refused below
            CALLS.clear()
            fork = await rt.fork(run.id, at_seq=at)
            assert await rt.handle(fork.execution_id).result() == {"n": 3}
            # Exactly the steps not completed by record `at` ran again, once each.
            ran = 3 - sum(_completed_by(journal, at).values())
            assert sum(CALLS.values()) == ran, (at, CALLS)
            copied = await rt.journal(fork.execution_id)
            assert [e.record for e in copied[1:at]] == [e.record for e in journal[1:at]]
            first = copied[0].record
            assert isinstance(first, ExecutionStarted)
            assert (first.forked_from, first.forked_at_seq) == (run.id, at)
            assert await rt.fork_origin(fork.execution_id) == (run.id, at)
            await check_replay(rt, fork.execution_id)
        assert await rt.fork_origin(run.id) is None


async def test_a_step_in_flight_at_the_record_runs_again_in_the_fork(db_url: str) -> None:
    CALLS.clear()
    GATE["slow"] = gate = anyio.Event()
    try:
        async with Runtime(db_url, tools=[bump, slow]) as rt:
            run = await rt.start(GATED, {"n": 0})
            with anyio.fail_after(10):  # the origin's `s` is handed out and held
                while CALLS["slow:1"] == 0:
                    await anyio.sleep(0.01)
            journal = await rt.journal(run.id)
            at = next(
                e.seq for e in journal
                if e.type == "node_scheduled" and e.record.node_id == "s"  # type: ignore[union-attr]
            )  # fmt: skip
            fork = await rt.fork(run.id, at_seq=at)
            assert fork.runs_again == ("s",)
            assert fork.finished_in_origin == ()
            with anyio.fail_after(10):
                while CALLS["slow:1"] < 2:  # the fork runs `s` again
                    await anyio.sleep(0.01)
            gate.set()
            assert await run.result() == {"n": 12}
            assert await rt.handle(fork.execution_id).result() == {"n": 12}
            # Forked again now that the origin committed `s`: the fork names it.
            again = await rt.fork(run.id, at_seq=at)
            assert again.runs_again == ("s",) and again.finished_in_origin == ("s",)
            assert await rt.handle(again.execution_id).result() == {"n": 12}
            # After `s` completed: it never runs again, only `c`.
            done = next(
                e.seq for e in await rt.journal(run.id)
                if e.type == "node_completed" and e.record.node_id == "s"  # type: ignore[union-attr]
            )  # fmt: skip
            before = CALLS.copy()
            after_s = await rt.fork(run.id, at_seq=done)
            assert after_s.runs_again == ()
            assert await rt.handle(after_s.execution_id).result() == {"n": 12}
            assert CALLS - before == Counter({"bump:11": 1})
    finally:
        GATE.clear()


async def test_a_fork_before_a_decision_can_decide_otherwise(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(APPROVAL, {"n": 0})
        with anyio.fail_after(10):
            while (await rt.state(run.id)).display_status != "paused":
                await anyio.sleep(0.01)
        journal = await rt.journal(run.id)
        waiting = next(e.seq for e in journal if e.type == "node_waiting")
        await rt.approve(run.id, "approved", "alice")
        assert (await run.result())["n"] == 2
        fork = await rt.fork(run.id, at_seq=waiting)
        assert fork.status == "paused"
        assert [n for n, _ in (await rt.state(fork.execution_id)).pending_approvals()] == ["review"]
        await rt.approve(fork.execution_id, "rejected", "bob")
        assert (await rt.handle(fork.execution_id).result())["n"] == 101
        await check_replay(rt, fork.execution_id)


async def test_a_code_first_fork_replays_its_recorded_calls_I8(db_url: str) -> None:
    CALLS.clear()
    async with Runtime(db_url, workflows=[code_chain]) as rt:
        run = await rt.start(code_chain, {"n": 0})
        origin = await run.result()
        assert origin["d"] == 1 + 2 + 1 + 3 + 4
        journal = await rt.journal(run.id)
        for at in range(1, len(journal)):
            CALLS.clear()
            fork = await rt.fork(run.id, at_seq=at)
            result = await rt.handle(fork.execution_id).result()
            assert result["d"] == origin["d"]
            now_seq = next(e.seq for e in journal if getattr(e.record, "node_id", "") == "@now#2")
            # The time the body read: the origin's when recorded by `at`, else read anew.
            assert (result["when"] == origin["when"]) == (now_seq <= at), at
            ran = 4 - sum(_completed_by(journal, at).values())
            assert sum(CALLS.values()) == ran, (at, CALLS)
            await check_replay(rt, fork.execution_id)


async def test_bad_forks_are_refused_and_write_nothing_I10(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(CHAIN, {"n": 0})
        await run.result()
        last = len(await rt.journal(run.id))
        before = await rt.list_executions()
        with pytest.raises(ExecutionNotFound, match="no execution 'exec_nope'"):
            await rt.fork("exec_nope", at_seq=1)
        for at in (0, -1, last + 1):
            with pytest.raises(RecordNotFound, match=f"has no record {at} .it holds records 1-"):
                await rt.fork(run.id, at_seq=at)
        with pytest.raises(ForkRefused, match=f"record {last} .* ends the run .completed."):
            await rt.fork(run.id, at_seq=last)
        assert await rt.list_executions() == before
        # A given id: a retry starts one fork; another origin under it is refused.
        a = await rt.fork(run.id, at_seq=2, fork_id="my-fork")
        b = await rt.fork(run.id, at_seq=2, fork_id="my-fork")
        assert a.execution_id == b.execution_id == "my-fork"
        with pytest.raises(Exception, match="in use"):
            await rt.fork(run.id, at_seq=3, fork_id="my-fork")
        assert await rt.handle("my-fork").result() == {"n": 3}
