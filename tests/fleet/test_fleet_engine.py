"""The scheduler behind a real broker: a Runtime with a ``ZmqFleet`` transport and
hand-driven workers.

Each worker here is a raw :class:`EngineConnection` on loopback that the test drives message
by message, so credit, fences, expiry, timeouts, parks and cancels can be checked exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import pytest

from tether import Runtime, tool
from tether.fleet import (
    Ack,
    Cancel,
    Credit,
    EngineConnection,
    EngineMessage,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    RateLimited,
    Reconnected,
    Result,
)
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text
from tether.testing import check_replay

pytestmark = pytest.mark.anyio
T = TypeVar("T")

TTL_MS = 600
BEAT_MS = 100


@tool
async def work(n: int) -> int:
    return n  # never runs in the engine: these engines have no in-process workers


ONE = """
workflow: {{id: one, version: "1", start: step, state_schema: {{n: {{type: integer}}}}}}
nodes:
  step: {{type: tool, tool: work, input: {{n: $n}}, output_key: n, next: end,
          retry: {retry}{timeout}}}
"""


def one(retry: str = "{max_attempts: 3, backoff_initial_secs: 0}", timeout: str = "") -> str:
    return ONE.format(retry=retry, timeout=f", timeout: {timeout}" if timeout else "")


class Hand:
    """A worker driven by the test: records what the engine sends, sends what it is told."""

    def __init__(self, conn: EngineConnection) -> None:
        self.conn = conn
        self.got: list[EngineMessage | Reconnected] = []
        self._changed = anyio.Event()

    async def pump(self) -> None:
        async for msg in self.conn.messages():
            self.got.append(msg)
            self._changed.set()
            self._changed = anyio.Event()

    async def expect(self, pick: Callable[[list[Any]], T | None], timeout: float = 10) -> T:
        with anyio.fail_after(timeout):
            while (found := pick(self.got)) is None or found == []:
                await self._changed.wait()
            return found

    def of(self, kind: type[T]) -> list[T]:
        return [m for m in self.got if isinstance(m, kind)]

    async def grants(self, n: int) -> list[Grant]:
        return await self.expect(lambda _: g if len(g := self.of(Grant)) >= n else None)

    async def ack_for(self, wid: str, fence: int) -> Ack:
        def find(_: object) -> Ack | None:
            acks = [a for a in self.of(Ack) if (a.work_item_id, a.fence) == (wid, fence)]
            return acks[0] if acks else None

        return await self.expect(find)

    async def beat(self, grants: list[Grant]) -> None:
        refs = [LeaseRef(g.work_item_id, g.fence) for g in grants]
        await self.conn.send(Heartbeat(leases=refs))

    async def keep_alive(self) -> None:
        """Heartbeat every lease granted so far, every BEAT_MS, as a live worker does.

        A hand that sends nothing is a silent worker: the broker forgets it one TTL after its
        last message, and the scheduler reclaims its leases.
        """
        while True:
            await self.beat(self.of(Grant))
            await anyio.sleep(BEAT_MS / 1000)

    async def finish(self, grant: Grant, output: object) -> Ack:
        await self.conn.send(Result(grant.work_item_id, grant.fence, ok=True, output=output))
        await self.conn.send(Credit(n=1))
        return await self.ack_for(grant.work_item_id, grant.fence)


@asynccontextmanager
async def hand(
    tg: anyio.abc.TaskGroup, endpoint: str, worker_id: str, capacity: int = 1
) -> AsyncIterator[Hand]:
    async with EngineConnection(
        endpoint, worker_id=worker_id, queues=["python_tool"], capacity=capacity, tools=["work"]
    ) as conn:
        h = Hand(conn)
        tg.start_soon(h.pump)
        yield h


@asynccontextmanager
async def engine(
    db: Path, port: int = 0, beat_ms: int = BEAT_MS, ttl_ms: int = TTL_MS
) -> AsyncIterator[tuple[Runtime, str]]:
    """A runtime whose steps all go to the fleet, and the endpoint its broker bound."""
    fleet = ZmqFleet(f"tcp://127.0.0.1:{port}", heartbeat_interval_ms=beat_ms)
    async with Runtime(
        f"sqlite:///{db}", tools=[work], transports=[fleet], max_concurrency=0, lease_ttl_ms=ttl_ms
    ) as rt:
        yield rt, fleet.endpoint


async def test_grants_follow_credit_and_results_are_acked_I5(tmp_path: Path) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        wf = rt.register(compile_yaml_text(one(), "one.yaml"))
        runs = [await rt.start(wf, {"n": i}) for i in range(4)]
        async with hand(tg, endpoint, "w1", capacity=2) as w:
            first = await w.grants(2)
            await w.beat(first)
            assert len(w.of(Grant)) == 2  # no credit, no grant
            done = 0
            while done < 4:
                grant = w.of(Grant)[done]
                ack = await w.finish(grant, grant.input["n"] * 10)
                assert ack.accepted, ack.reason
                done += 1
                if done < 4:
                    await w.grants(min(done + 2, 4))
            results = [await r.result(timeout=10) for r in runs]
            assert results == [{"n": i * 10} for i in range(4)]
            assert {g.attempt for g in w.of(Grant)} == {1}
            await check_replay(rt, runs[0].id)
            tg.cancel_scope.cancel()


async def test_a_credit_after_the_ack_grants_an_item_waiting_for_it(tmp_path: Path) -> None:
    # The Credit goes to the ledger without a scheduler message; sent after the Ack, nothing
    # else wakes the scheduler (no heartbeat, a sweep a minute away), so the ledger must.
    quiet = engine(tmp_path / "e.db", beat_ms=60_000, ttl_ms=240_000)
    async with quiet as (rt, endpoint), anyio.create_task_group() as tg:
        wf = rt.register(compile_yaml_text(one(), "one.yaml"))
        runs = [await rt.start(wf, {"n": i}) for i in range(2)]
        async with hand(tg, endpoint, "w1", capacity=1) as w:
            [first] = await w.grants(1)
            done = Result(first.work_item_id, first.fence, ok=True, output=first.input["n"])
            await w.conn.send(done)
            assert (await w.ack_for(first.work_item_id, first.fence)).accepted
            assert len(w.of(Grant)) == 1  # no credit, no grant
            await w.conn.send(Credit(n=1))
            [_, second] = await w.grants(2)
            assert (await w.finish(second, second.input["n"])).accepted
            assert [await r.result(timeout=10) for r in runs] == [{"n": 0}, {"n": 1}]
            tg.cancel_scope.cancel()


async def test_a_result_carrying_its_credit_frees_the_slot_for_the_next_item(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        wf = rt.register(compile_yaml_text(one(), "one.yaml"))
        runs = [await rt.start(wf, {"n": i}) for i in range(2)]
        async with hand(tg, endpoint, "w1", capacity=1) as w:
            assert w.conn.welcome.result_credits  # so a worker sends no Credit after it
            [first] = await w.grants(1)
            n = first.input["n"]
            await w.conn.send(Result(first.work_item_id, first.fence, ok=True, output=n, credit=1))
            [_, second] = await w.grants(2)
            assert (await w.ack_for(first.work_item_id, first.fence)).accepted
            assert (await w.finish(second, second.input["n"])).accepted
            assert [await r.result(timeout=10) for r in runs] == [{"n": 0}, {"n": 1}]
            tg.cancel_scope.cancel()


async def test_silent_worker_lease_is_reclaimed_and_its_late_result_refused_I5(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(one(), "one.yaml")), {"n": 1})
        async with hand(tg, endpoint, "stale") as stale:
            [old] = await stale.grants(1)
            # Sends nothing for longer than a TTL: the engine takes the lease back. "fresh"
            # joins at once and heartbeats: had it been silent too, it would be forgotten one
            # TTL after its Hello, a few ms after "stale", often in the same sweep, before the
            # retry was created for it (then nobody was left to grant it to).
            async with (
                hand(tg, endpoint, "fresh") as fresh,
                anyio.create_task_group() as alive,
            ):
                alive.start_soon(fresh.keep_alive)
                [new] = await fresh.grants(1)
                assert (new.node_id, new.attempt, new.dispatch) == ("step", 2, 2)
                assert new.work_item_id != old.work_item_id
                assert (await fresh.finish(new, 222)).accepted
                assert await run.result(timeout=10) == {"n": 222}
                alive.cancel_scope.cancel()
            late = Result(old.work_item_id, old.fence, ok=True, output=111)
            await stale.conn.send(late)
            # Forgotten as silent, it is told to say Hello first; then it sends again, as the
            # real worker does with every unacknowledged result after Reconnected.
            answer = await stale.expect(lambda _: stale.of(Ack) or stale.of(Reconnected))
            if isinstance(answer[0], Reconnected):
                await stale.conn.send(late)
            refused = await stale.ack_for(old.work_item_id, old.fence)
            assert not refused.accepted, stale.got
            assert old.work_item_id in refused.reason
        entries = await rt.journal(run.id)
        failed = [e.record for e in entries if e.type == "node_failed"]
        assert len(failed) == 1 and failed[0].error.startswith("lease expired")  # type: ignore[union-attr]
        assert failed[0].error_type == "LeaseExpired"  # type: ignore[union-attr]
        assert [e.type for e in entries].count("node_completed") == 1
        row = await rt.store.get_work_item(old.work_item_id)
        assert row is not None and row.status == "failed"
        await check_replay(rt, run.id)
        tg.cancel_scope.cancel()


async def test_heartbeat_naming_an_unknown_lease_is_told_to_stop_it(tmp_path: Path) -> None:
    async with engine(tmp_path / "e.db") as (_, endpoint), anyio.create_task_group() as tg:
        async with hand(tg, endpoint, "w1") as w:
            await w.conn.send(Heartbeat(leases=[LeaseRef("nope/x/1", 3)]))
            # Answered (as every heartbeat is) naming the engine's life and the unknown lease.
            acks = await w.expect(lambda _: w.of(HeartbeatAck))
            assert acks[0].expired == [LeaseRef("nope/x/1", 3)]
            lives = {a.incarnation for a in w.of(HeartbeatAck)}
            assert lives == {w.conn.welcome.incarnation} and len(lives.pop()) == 16
        tg.cancel_scope.cancel()


async def test_result_for_an_unknown_item_is_refused_and_serving_goes_on_I10(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(one(), "one.yaml")), {"n": 5})
        async with hand(tg, endpoint, "w1") as w:
            await w.conn.send(Result("nope/x/1", 7, ok=True, output=1))
            refused = await w.ack_for("nope/x/1", 7)
            assert not refused.accepted and "nope/x/1" in refused.reason
            [grant] = await w.grants(1)
            assert (await w.finish(grant, 6)).accepted
            assert await run.result(timeout=10) == {"n": 6}
        tg.cancel_scope.cancel()


async def test_rate_limited_report_parks_and_grants_again_with_a_new_fence_I5(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(one(), "one.yaml")), {"n": 2})
        async with hand(tg, endpoint, "w1") as w:
            [first] = await w.grants(1)
            await w.conn.send(RateLimited(first.work_item_id, first.fence, 0.05, "429"))
            await w.conn.send(Credit(n=1))
            assert (await w.ack_for(first.work_item_id, first.fence)).accepted
            [_, again] = await w.grants(2)
            assert (again.work_item_id, again.fence) == (first.work_item_id, first.fence + 1)
            assert again.attempt == 1
            assert (await w.finish(again, 3)).accepted
            assert await run.result(timeout=10) == {"n": 3}
        entries = await rt.journal(run.id)
        assert [e.type for e in entries].count("node_parked") == 1
        assert {e.record.attempt for e in entries if e.type.startswith("node_")} == {1}  # type: ignore[union-attr]
        tg.cancel_scope.cancel()


async def test_remote_node_timeout_stops_the_worker_and_dead_letters(tmp_path: Path) -> None:
    wf_text = one(retry="{max_attempts: 1}", timeout="0.2s")
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(wf_text, "one.yaml")), {"n": 2})
        async with hand(tg, endpoint, "w1") as w:
            [grant] = await w.grants(1)
            assert grant.timeout_secs == 0.2

            async def keep_beating() -> None:
                while True:
                    await w.beat([grant])
                    await anyio.sleep(BEAT_MS / 1000)

            async with anyio.create_task_group() as beats:
                beats.start_soon(keep_beating)  # alive and holding it: only the timeout ends it
                [cancel] = await w.expect(lambda _: w.of(Cancel))
                assert (cancel.work_item_id, cancel.fence, cancel.reason) == (
                    grant.work_item_id,
                    grant.fence,
                    "timed out",
                )
                state = await rt.wait(run.id, timeout=10)
                assert state.status == "failed" and "timed out" in (state.error or "")
                beats.cancel_scope.cancel()
        row = await rt.store.get_work_item(grant.work_item_id)
        assert row is not None and row.status == "dead"
        tg.cancel_scope.cancel()


async def test_cancel_reaches_the_worker_running_the_node(tmp_path: Path) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(one(), "one.yaml")), {"n": 2})
        async with hand(tg, endpoint, "w1") as w:
            [grant] = await w.grants(1)
            assert await rt.cancel(run.id, reason="superseded")
            [cancel] = await w.expect(lambda _: w.of(Cancel))
            assert cancel.work_item_id == grant.work_item_id
            assert cancel.reason == "execution cancelled"
            await w.conn.send(Result(grant.work_item_id, grant.fence, ok=True, output=1))
            assert not (await w.ack_for(grant.work_item_id, grant.fence)).accepted
        row = await rt.store.get_work_item(grant.work_item_id)
        assert row is not None and row.status == "cancelled"
        tg.cancel_scope.cancel()


async def test_a_worker_keeps_its_lease_across_an_engine_restart_I5(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    async with engine(db) as (rt, endpoint):
        port = int(endpoint.rsplit(":", 1)[1])
    async with anyio.create_task_group() as tg:
        async with engine(db, port) as (rt, endpoint):
            run = await rt.start(rt.register(compile_yaml_text(one(), "one.yaml")), {"n": 4})
            w_cm = hand(tg, f"tcp://127.0.0.1:{port}", "w1")
            w = await w_cm.__aenter__()
            [grant] = await w.grants(1)
        # The engine is gone; the worker goes on running its lease. A new engine on the same
        # file and port: the worker reconnects and reports with the fence it was granted.
        async with engine(db, port) as (rt, endpoint):
            await w.beat([grant])  # refused as unknown: the connection says Hello again
            await w.expect(lambda _: w.of(Reconnected))
            await w.beat([grant])
            assert (await w.finish(grant, 40)).accepted
            assert await rt.handle(run.id).result(timeout=10) == {"n": 40}
            entries = await rt.journal(run.id)
            assert not [e for e in entries if e.type == "node_failed"]
            await w_cm.__aexit__(None, None, None)
        tg.cancel_scope.cancel()


async def test_items_created_while_workers_have_credit_are_spread_over_them(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        wf = rt.register(compile_yaml_text(one(), "one.yaml"))
        async with (
            hand(tg, endpoint, "w1", capacity=4) as w1,
            hand(tg, endpoint, "w2", capacity=4) as w2,
        ):
            for w in (w1, w2):  # the scheduler answers after it has taken the worker in
                await w.conn.send(Heartbeat(leases=[LeaseRef("sync/x/1", 1)]))
                await w.expect(lambda got: [m for m in got if isinstance(m, HeartbeatAck)])
            runs = [await rt.start(wf, {"n": i}) for i in range(4)]
            first, second = await w1.grants(2), await w2.grants(2)
            for w, grants in ((w1, first), (w2, second)):
                for grant in grants:
                    assert (await w.finish(grant, grant.input["n"])).accepted
            assert [await r.result(timeout=10) for r in runs] == [{"n": i} for i in range(4)]
        tg.cancel_scope.cancel()
