"""The engine's Broker over real sockets on 127.0.0.1: handshake, routing, volume, bad input,
liveness, replacement and vanished peers."""

from __future__ import annotations

import anyio
import pytest
import zmq
import zmq.asyncio
from fleet_helpers import RawPeer, Recorder, ack_results, connection, hello, received

from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Broker,
    Bye,
    Credit,
    Grant,
    Heartbeat,
    Peer,
    Result,
    Welcome,
    WorkerMessage,
)
from tether.fleet.broker import DEFAULT_HWM
from tether.fleet.protocol import (
    ERR_BAD_FRAME,
    ERR_HELLO_REQUIRED,
    ERR_PROTOCOL_VERSION,
    ERR_WORKER_ID,
)

pytestmark = pytest.mark.anyio

LOCAL = "tcp://127.0.0.1:0"


def grant(work_item_id: str, fence: int = 1) -> Grant:
    return Grant(
        work_item_id=work_item_id,
        fence=fence,
        execution_id="exec_1",
        node_id="n",
        attempt=1,
        dispatch=fence,
        tool="echo",
        input={"i": fence},
    )


def broker(
    recorder: Recorder,
    *,
    heartbeat_interval_ms: int = 1_000,
    lease_ttl_ms: int = 5_000,
    hwm: int = DEFAULT_HWM,
) -> Broker:
    """A Broker on a free local port, wired to answer through ``recorder``."""
    b = Broker(
        LOCAL,
        recorder,
        engine_id="eng-1",
        heartbeat_interval_ms=heartbeat_interval_ms,
        lease_ttl_ms=lease_ttl_ms,
        hwm=hwm,
    )
    recorder.broker = b
    return b


async def test_hello_welcome_round_trip_and_real_port() -> None:
    rec = Recorder()
    async with broker(rec, heartbeat_interval_ms=100, lease_ttl_ms=1000) as b:
        assert b.endpoint.startswith("tcp://127.0.0.1:")
        assert not b.endpoint.endswith(":0")
        async with connection(b.endpoint, "w1", capacity=3, tools=["a", "b"]) as conn:
            assert conn.engine_id == "eng-1"
            assert conn.welcome == Welcome(
                protocol=PROTOCOL_VERSION,
                engine_id="eng-1",
                heartbeat_interval_ms=100,
                lease_ttl_ms=1000,
                incarnation=b.incarnation,  # this life of the engine, random per start
                batches=True,  # it reads what a worker sends in one loop turn as one frame
            )
            assert len(b.incarnation) == 16
            peer = await rec.wait_until(lambda: rec.joined_peer("w1"))
            assert (peer.capacity, peer.tools, peer.queues) == (3, ("a", "b"), ("default",))
            assert peer.pid > 0 and peer.host
            assert b.peer_for("w1") is peer
            assert dict(b.peers) == {peer.identity: peer}


async def test_20k_grants_and_results_pipelined_none_lost_order_kept() -> None:
    n = 20_000
    rec = Recorder(reply=ack_results)
    async with broker(rec) as b, connection(b.endpoint, "w1") as conn:
        peer = await rec.wait_until(lambda: rec.joined_peer("w1"))
        # The whole burst is queued before the worker reads one: this is what needs a
        # high-water mark above ZeroMQ's default of 1,000.
        for i in range(n):
            assert b.send(peer.identity, grant(f"item-{i}", fence=i))
        received = 0
        with anyio.fail_after(20):
            async for msg in conn.messages():
                assert isinstance(msg, Grant)
                assert msg.fence == received
                await conn.send(Result(work_item_id=msg.work_item_id, fence=msg.fence, ok=True))
                received += 1
                if received == n:
                    break
            acks = 0
            async for msg in conn.messages():
                assert isinstance(msg, Ack) and msg.fence == acks
                acks += 1
                if acks == n:
                    break
        fences = [m.fence for _, m in rec.messages if isinstance(m, Result)]
        assert fences == list(range(n))
        assert rec.left == []


async def test_two_workers_get_their_own_messages() -> None:
    rec = Recorder()
    async with (
        broker(rec) as b,
        connection(b.endpoint, "w1") as c1,
        connection(b.endpoint, "w2") as c2,
    ):
        await rec.wait_until(lambda: len(rec.joined) == 2)
        for worker_id in ("w1", "w2"):
            peer = b.peer_for(worker_id)
            assert peer is not None
            for i in range(3):
                b.send(peer.identity, grant(f"{worker_id}-{i}", fence=i))
        for conn, worker_id in ((c1, "w1"), (c2, "w2")):
            got = await received(conn, 3)
            assert all(isinstance(msg, Grant) for msg in got)
            assert [msg.work_item_id for msg in got] == [f"{worker_id}-{i}" for i in range(3)]
        await c1.send(Credit(n=1))
        await c2.send(Credit(n=2))
        await rec.wait_until(lambda: len(rec.messages) == 2)
        by_worker = {peer.worker_id: msg for peer, msg in rec.messages}
        assert by_worker == {"w1": Credit(n=1), "w2": Credit(n=2)}


async def test_bad_frames_answered_while_another_worker_is_served_I10(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder(reply=ack_results)
    async with broker(rec) as b, connection(b.endpoint, "good") as good:
        messages = good.messages()
        raw = RawPeer(zctx, b.endpoint)
        fence = 0

        async def good_round_trip() -> None:
            nonlocal fence
            fence += 1
            await good.send(Result(work_item_id="x", fence=fence, ok=True))
            with anyio.fail_after(5):
                assert await anext(messages) == Ack(work_item_id="x", fence=fence, accepted=True)

        await raw.send_frames(b"\xc1\x00")
        err = await raw.expect_error(ERR_BAD_FRAME)
        assert "malformed" in err.message
        await good_round_trip()

        await raw.send_obj({"type": "teleport", "to": "mars"})
        err = await raw.expect_error(ERR_BAD_FRAME)
        assert "'teleport' - at `$.type`" in err.message
        await good_round_trip()

        await raw.send_obj({"type": "credit", "n": "many"})
        err = await raw.expect_error(ERR_BAD_FRAME)
        assert "`$.n`" in err.message
        await good_round_trip()

        await raw.send_frames(b"one", b"two", b"three")
        err = await raw.expect_error(ERR_BAD_FRAME)
        assert "got 3 frames" in err.message
        await good_round_trip()

        await raw.send(Credit(n=1))
        err = await raw.expect_error(ERR_HELLO_REQUIRED)
        assert "send Hello first" in err.message
        await good_round_trip()

        await raw.send(hello("raw", protocol=PROTOCOL_VERSION + 1))
        err = await raw.expect_error(ERR_PROTOCOL_VERSION)
        assert f"protocol {PROTOCOL_VERSION + 1}" in err.message
        await good_round_trip()

        for reserved in ("local", "http/w1"):  # the engine's own workers' names (I10)
            await raw.send(hello(reserved))
            err = await raw.expect_error(ERR_WORKER_ID)
            assert "reserved" in err.message
        await good_round_trip()

        assert [p.worker_id for p in rec.joined] == ["good"]
        assert [p.worker_id for p in b.peers.values()] == ["good"]
        assert [m for _, m in rec.messages if not isinstance(m, Result)] == []

        # The same connection can still say a proper Hello afterwards.
        await raw.send(hello("raw"))
        assert isinstance(await raw.recv(), Welcome)
        await rec.wait_until(lambda: rec.joined_peer("raw"))
        raw.close()
        assert rec.left == []


async def test_silent_worker_reported_after_ttl_while_heartbeating_one_stays() -> None:
    rec = Recorder()
    # "alive" beats every 50 ms against a 500 ms TTL: it stays known through a stall of this
    # process of up to 450 ms (a loaded machine), while "quiet" is reported.
    async with (
        broker(rec, heartbeat_interval_ms=50, lease_ttl_ms=500) as b,
        connection(b.endpoint, "quiet"),
        connection(b.endpoint, "alive") as alive,
    ):
        await rec.wait_until(lambda: len(rec.joined) == 2)
        quiet = rec.joined_peer("quiet")
        assert quiet is not None
        last_seen = quiet.last_seen

        async def heartbeat() -> None:
            while True:
                await alive.send(Heartbeat())
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            reason = await rec.wait_until(lambda: rec.left_reason("quiet"))
            reported_at = anyio.current_time()
            tg.cancel_scope.cancel()
        assert reason.startswith("silent for ")
        silent_ms = int(reason.split()[2])
        # Not before a TTL of silence, and the silence it reports is the one measured from the
        # last message to the sweep, which came before the report reached us (both on the loop's
        # clock, as anyio.current_time is).
        assert 500 <= silent_ms <= (reported_at - last_seen) * 1000
        assert b.peer_for("quiet") is None
        assert rec.left_reason("alive") is None
        assert b.peer_for("alive") is not None


async def test_reconnected_worker_replaces_the_old_peer() -> None:
    rec = Recorder()
    async with broker(rec) as b:
        async with connection(b.endpoint, "w1"):
            old = await rec.wait_until(lambda: rec.joined_peer("w1"))
        # ZeroMQ learns of the closed connection asynchronously (no event reaches the test):
        # until it has, the old peer is live to the broker and a Hello under its id would be
        # refused as a takeover (the rule this test is not about).
        with anyio.fail_after(5):
            while b._reachable(old.identity):
                await anyio.sleep(0.005)
        async with connection(b.endpoint, "w1"):
            await rec.wait_until(lambda: len(rec.joined) == 2)
            new = rec.joined[1]
            assert new.identity != old.identity
            assert rec.left == [(old, "replaced")]
            assert b.peer_for("w1") is new
            assert list(b.peers) == [new.identity]
            assert not b.send(old.identity, grant("stale"))


async def test_send_to_a_vanished_peer_reports_it_and_broker_keeps_serving() -> None:
    rec = Recorder(reply=ack_results)
    async with broker(rec) as b, connection(b.endpoint, "stays") as stays:
        async with connection(b.endpoint, "goes"):
            goes = await rec.wait_until(lambda: rec.joined_peer("goes"))
        # ZeroMQ learns of the closed TCP connection asynchronously; until then sends queue.
        with anyio.fail_after(5):
            while b.send(goes.identity, grant("g")):
                await anyio.sleep(0.005)
        reason = await rec.wait_until(lambda: rec.left_reason("goes"))
        assert reason.startswith("unreachable")
        assert b.peer_for("goes") is None
        await stays.send(Result(work_item_id="s", fence=1, ok=True))
        with anyio.fail_after(5):
            assert await anext(stays.messages()) == Ack(work_item_id="s", fence=1, accepted=True)


async def test_peer_that_stops_reading_is_reported_not_blocking(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder()
    async with broker(rec, hwm=10) as b:
        raw = RawPeer(zctx, b.endpoint)
        raw.sock.setsockopt(zmq.RCVHWM, 10)
        await raw.send(hello("sleepy"))
        assert isinstance(await raw.recv(), Welcome)
        peer = await rec.wait_until(lambda: rec.joined_peer("sleepy"))
        sent = 0
        while b.send(peer.identity, grant("g", fence=sent)):
            sent += 1  # fills the kernel's TCP buffers too, then the HWM
            assert sent < 10_000_000
        reason = await rec.wait_until(lambda: rec.left_reason("sleepy"))
        assert reason.startswith("not reading")
        raw.close()


async def test_bye_reports_the_worker_left() -> None:
    rec = Recorder()
    async with broker(rec) as b, connection(b.endpoint, "w1") as conn:
        await conn.send(Bye(reason="draining"))
        assert await rec.wait_until(lambda: rec.left_reason("w1")) == "bye: draining"
        assert b.peer_for("w1") is None


async def test_handler_exception_is_logged_and_broker_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def reply(peer: Peer, msg: WorkerMessage) -> Ack | None:
        if isinstance(msg, Credit):
            raise KeyError("scheduler bug")
        return ack_results(peer, msg)

    rec = Recorder(reply=reply)
    async with broker(rec) as b, connection(b.endpoint, "w1") as conn:
        await conn.send(Credit(n=1))
        await conn.send(Result(work_item_id="r", fence=1, ok=True))
        with anyio.fail_after(5):
            assert await anext(conn.messages()) == Ack(work_item_id="r", fence=1, accepted=True)
    assert "handler callback failed" in caplog.text


async def test_send_outside_async_with_raises_and_unknown_identity_is_false() -> None:
    rec = Recorder()
    b = broker(rec)
    with pytest.raises(RuntimeError, match="not running"):
        b.send(b"nobody", grant("x"))
    async with b:
        assert not b.send(b"nobody", grant("x"))
    with pytest.raises(RuntimeError, match="not running"):
        b.send(b"nobody", grant("x"))


def test_ttl_must_cover_two_heartbeats() -> None:
    with pytest.raises(ValueError, match="at least twice"):
        Broker(LOCAL, Recorder(), engine_id="e", heartbeat_interval_ms=100, lease_ttl_ms=150)
