"""Peers that misbehave on a loopback worker port without keys: none of them can take a worker
id, leave phantom workers behind, grow the journal or break a run (I10, I14). Each test ends
with a legitimate worker finishing the runs."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest
import zmq.asyncio
from big_tools import big, work
from fleet_helpers import RawPeer, hello
from test_fleet_engine import Hand, hand
from test_fleet_worker_cli import finish

from tether import Runtime
from tether.fleet import Bye, Heartbeat, LeaseRef, ProtocolError, Reconnected, Result, Welcome
from tether.fleet.protocol import ERR_BAD_FRAME, ERR_HELLO_REQUIRED, ERR_WORKER_ID
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TTL_MS = 3_000

WF = """
workflow: {{id: w, version: "1", start: step, state_schema: {{n: {{type: integer}}}}}}
nodes:
  step: {{type: tool, tool: {tool}, input: {input}, output_key: n, next: end,
          retry: {{max_attempts: 3, backoff_initial_secs: 0}}}}
"""


def workflow(tool: str = "work", input: str = "{n: $n}") -> str:
    return WF.format(tool=tool, input=input)


@asynccontextmanager
async def engine(db: Path) -> AsyncIterator[tuple[Runtime, str]]:
    fleet = ZmqFleet("tcp://127.0.0.1:0", heartbeat_interval_ms=100)
    async with Runtime(
        f"sqlite:///{db}", tools=[work, big], transports=[fleet], max_concurrency=0,
        lease_ttl_ms=TTL_MS,
    ) as rt:  # fmt: skip
        yield rt, fleet.endpoint


def journal_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


async def serve_all(w: Hand, count: int) -> None:
    """Finish ``count`` grants with their input, heartbeating while it waits."""
    done = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(w.keep_alive)
        while done < count:
            grants = await w.grants(done + 1)
            grant = grants[done]
            assert (await w.finish(grant, grant.input["n"])).accepted
            done += 1
        tg.cancel_scope.cancel()


async def test_one_connection_cannot_register_a_flood_of_worker_ids_I14(
    tmp_path: Path,
) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        ctx = zmq.asyncio.Context()
        flood = RawPeer(ctx, endpoint)
        try:
            for i in range(200):
                await flood.send(hello(f"ghost-{i}"))
            answers = [await flood.recv() for _ in range(200)]
            assert isinstance(answers[0], Welcome)
            refused = answers[1:]
            assert all(isinstance(a, ProtocolError) and a.code == ERR_WORKER_ID for a in refused)
            assert "one worker id per connection" in refused[0].message  # type: ignore[union-attr]
            await flood.send(Bye(reason="gone"))
        finally:
            flood.close()
            ctx.destroy(linger=0)
        wf = rt.register(compile_yaml_text(workflow(), "w.yaml"))
        async with hand(tg, endpoint, "legit", capacity=2) as w:
            # The scheduler has taken in the legitimate worker, and no ghost is left. A heartbeat
            # for a lease nobody holds is answered through the scheduler, after it took in the
            # join: its answer wakes expect (Welcome comes from the broker before that).
            await w.conn.send(Heartbeat(leases=[LeaseRef("sync/x/1", 1)]))
            await w.expect(lambda _: [x for x in rt.workers() if x["worker_id"] == "legit"])
            runs = [await rt.start(wf, {"n": i}) for i in range(10)]
            await serve_all(w, 10)
            assert [await r.result(timeout=10) for r in runs] == [{"n": i} for i in range(10)]
            assert [x["worker_id"] for x in rt.workers()] == ["legit"]
            for run in runs:
                assert "node_failed" not in [e.type for e in await rt.journal(run.id)]
        tg.cancel_scope.cancel()


async def test_a_second_connection_cannot_take_a_live_worker_id_I14(tmp_path: Path) -> None:
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(workflow(), "w.yaml")), {"n": 4})
        async with hand(tg, endpoint, "good-4") as good:
            [grant] = await good.grants(1)
            ctx = zmq.asyncio.Context()
            thief = RawPeer(ctx, endpoint)
            try:
                await thief.send(hello("good-4"))
                refusal = await thief.expect_error(ERR_WORKER_ID)
                assert "live on another connection" in refusal.message
                await thief.send(Result(grant.work_item_id, grant.fence, ok=True, output=666))
                await thief.expect_error(ERR_HELLO_REQUIRED)
            finally:
                thief.close()
                ctx.destroy(linger=0)
            await good.beat([grant])
            assert (await good.finish(grant, 44)).accepted
            assert await run.result(timeout=10) == {"n": 44}
        tg.cancel_scope.cancel()


async def test_non_finite_retry_after_and_huge_credit_are_refused_and_the_run_completes_I10(
    tmp_path: Path,
) -> None:
    db = tmp_path / "e.db"
    async with engine(db) as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(workflow(), "w.yaml")), {"n": 3})
        async with hand(tg, endpoint, "w1") as w:
            [grant] = await w.grants(1)
            sock = w.conn._sock  # the worker's own connection: raw frames, as a rogue peer sends
            assert sock is not None
            bad = [
                {"type": "rate_limited", "work_item_id": grant.work_item_id,
                 "fence": grant.fence, "retry_after_secs": value}
                for value in (math.inf, math.nan, -1.0, 1e12)
            ] + [{"type": "credit", "n": n} for n in (2**63, 2**40, 0)]  # fmt: skip
            for frame in bad:
                sock.send(msgspec.msgpack.encode(frame))
            errors = await w.expect(lambda _: e if len(e := w.of(ProtocolError)) >= 7 else None)
            assert {e.code for e in errors} == {ERR_BAD_FRAME}
            assert "retry_after_secs" in errors[0].message and "$.n" in errors[-1].message
            await w.beat([grant])
            assert (await w.finish(grant, 30)).accepted
            assert await run.result(timeout=10) == {"n": 30}
        types = [e.type for e in await rt.journal(run.id)]
        assert "node_parked" not in types and "node_failed" not in types
        tg.cancel_scope.cancel()


async def test_a_50_mib_result_is_refused_without_growing_the_journal_I10(
    tmp_path: Path,
) -> None:
    db = tmp_path / "e.db"
    async with engine(db) as (rt, endpoint), anyio.create_task_group() as tg:
        run = await rt.start(rt.register(compile_yaml_text(workflow(), "w.yaml")), {"n": 5})
        before = journal_bytes(db)
        async with hand(tg, endpoint, "w1") as w:
            [grant] = await w.grants(1)
            async with anyio.create_task_group() as alive:
                alive.start_soon(w.keep_alive)
                huge = Result(grant.work_item_id, grant.fence, ok=True, output="x" * (50 << 20))
                await w.conn.send(huge)
                # ZeroMQ closes a connection that sends a frame above the limit; the worker
                # reconnects under its id and goes on with its lease.
                await w.expect(lambda _: w.of(Reconnected))
                assert (await w.finish(grant, 50)).accepted
                alive.cancel_scope.cancel()
            assert await run.result(timeout=10) == {"n": 50}
        assert journal_bytes(db) - before < 1 << 20
        tg.cancel_scope.cancel()


async def test_a_real_worker_reports_a_too_large_output_as_a_failure_I10(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    async with engine(db) as (rt, endpoint):
        text = workflow(tool="big", input="{mib: 50}").replace("integer", "string")
        run = await rt.start(rt.register(compile_yaml_text(text, "w.yaml")), {"n": "-"})
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
        proc = subprocess.Popen(
            [sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
             "--modules", "big_tools"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            state = await rt.wait(run.id, timeout=60)
        finally:
            proc.terminate()
            await finish(proc, timeout=30)  # killed if it does not end in time
        assert state.status == "failed"
        assert "more than the engine accepts" in (state.error or "")
        failed = [e.record for e in await rt.journal(run.id) if e.type == "node_failed"]
        assert len(failed) == 1  # not retryable: the same output would come back
        assert failed[0].error_type == "OutputTooLarge"  # type: ignore[union-attr]
        assert journal_bytes(db) < 5 << 20


async def test_a_flood_of_idle_connections_to_the_worker_port_leaves_runs_going_I10(
    tmp_path: Path,
) -> None:
    """Hundreds of TCP connections that never speak (no ZMTP greeting) hold no worker
    slot and no scheduler state: a real worker joining afterwards runs every step."""
    async with engine(tmp_path / "e.db") as (rt, endpoint), anyio.create_task_group() as tg:
        port = int(endpoint.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(300)]
        try:
            wf = rt.register(compile_yaml_text(workflow(), "w.yaml"))
            runs = [await rt.start(wf, {"n": i}) for i in range(5)]
            async with hand(tg, endpoint, "real") as w:
                await serve_all(w, 5)
                assert [await r.result(timeout=30) for r in runs] == [{"n": i} for i in range(5)]
            assert [x["worker_id"] for x in rt.workers()] in ([], ["real"])
        finally:
            for s in idle:
                s.close()
        tg.cancel_scope.cancel()
