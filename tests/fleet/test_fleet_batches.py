"""Batch frames over real sockets on 127.0.0.1: what one loop turn sends a peer goes in one
frame, in order, only to a peer that said it reads them; a Batch received is handled message by
message, its bad parts refused without losing the rest (I10); a worker's Batch never exceeds
the engine's frame limit, and nothing is lost while the engine is not reading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import msgspec
import pytest
import zmq
import zmq.asyncio
from fleet_helpers import RawPeer, Recorder, connection, hello, received
from test_fleet_broker import broker, grant

from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Credit,
    Grant,
    Heartbeat,
    Result,
    Welcome,
)
from tether.fleet.outbox import wire_frames
from tether.fleet.protocol import (
    ERR_BAD_FRAME,
    ERR_HELLO_REQUIRED,
    Batch,
    Bye,
    Hello,
    decode_engine_message,
    decode_worker_message,
    encode,
)

pytestmark = pytest.mark.anyio


def batched_hello(worker_id: str) -> Hello:
    return msgspec.structs.replace(hello(worker_id), batches=True)


async def test_one_turns_messages_to_a_batch_reader_arrive_in_one_frame_in_order(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder()
    async with broker(rec) as b:
        new, old = RawPeer(zctx, b.endpoint), RawPeer(zctx, b.endpoint)
        try:
            await new.send(batched_hello("new"))
            await old.send(hello("old"))  # an older worker: says nothing of batches
            welcome = await new.recv()
            assert isinstance(welcome, Welcome) and welcome.batches  # it reads ours too
            assert isinstance(await old.recv(), Welcome)
            await rec.wait_until(lambda: len(rec.joined) == 2)
            for worker_id in ("new", "old"):
                peer = b.peer_for(worker_id)
                assert peer is not None
                for i in range(3):  # one loop turn: no await between the sends
                    assert b.send(peer.identity, grant(f"{worker_id}-{i}", fence=i + 1))
            frame = await new.recv()
            assert isinstance(frame, Batch)
            inner = [decode_engine_message(f) for f in frame.frames]
            assert [m.work_item_id for m in inner if isinstance(m, Grant)] == [
                "new-0", "new-1", "new-2",
            ]  # fmt: skip
            for i in range(3):  # one frame each, as before batches
                msg = await old.recv()
                assert isinstance(msg, Grant) and msg.work_item_id == f"old-{i}"
        finally:
            new.close()
            old.close()


async def test_a_workers_batch_is_handled_message_by_message_bad_parts_refused_I10(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder()
    async with broker(rec) as b:
        raw = RawPeer(zctx, b.endpoint)
        try:
            # Before its Hello a Batch is refused whole, like any message.
            await raw.send(Batch(frames=[encode(Credit(n=1))]))
            await raw.expect_error(ERR_HELLO_REQUIRED)
            await raw.send(batched_hello("w1"))
            assert isinstance(await raw.recv(), Welcome)
            beat = Heartbeat()
            frames = [
                encode(Credit(n=1)),
                b"\xc1not msgpack",
                encode(beat),
                encode(batched_hello("w2")),  # a Hello never travels in a batch
                encode(Batch(frames=[encode(Credit(n=9))])),  # nor a batch
                encode(Credit(n=2)),
            ]
            await raw.send(Batch(frames=frames))
            await rec.wait_until(lambda: len(rec.messages) == 3)
            assert [m for _, m in rec.messages] == [Credit(n=1), beat, Credit(n=2)]
            for _ in range(3):
                refusal = await raw.expect_error(ERR_BAD_FRAME)
                assert "batch" in refusal.message
            assert b.peer_for("w2") is None
            # A Bye part way: what follows it is no longer the worker's to say.
            await raw.send(Batch(frames=[encode(Bye(reason="done")), encode(Credit(n=3))]))
            assert await rec.wait_until(lambda: rec.left_reason("w1")) == "bye: done"
            # One connection's frames are handled in order: once its next Hello is, so is the
            # rest of that batch.
            await raw.send(batched_hello("w1"))
            assert isinstance(await raw.recv(), Welcome)
            await rec.wait_until(lambda: len(rec.joined) == 2)
            assert len(rec.messages) == 3
        finally:
            raw.close()


async def test_a_batch_reader_that_stops_reading_is_reported_when_a_turns_frame_cannot_go(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder()
    async with broker(rec, hwm=10) as b:
        raw = RawPeer(zctx, b.endpoint)
        raw.sock.setsockopt(zmq.RCVHWM, 10)
        try:
            await raw.send(batched_hello("sleepy"))
            assert isinstance(await raw.recv(), Welcome)
            peer = await rec.wait_until(lambda: rec.joined_peer("sleepy"))
            turns = 0
            while rec.left_reason("sleepy") is None:  # a turn's grants, then its end
                for i in range(100):
                    b.send(peer.identity, grant("g", fence=turns * 100 + i + 1))
                await anyio.lowlevel.checkpoint()
                turns += 1
                assert turns < 2_000  # a few MB of grants fill its queues and TCP's
            assert (rec.left_reason("sleepy") or "").startswith("not reading")
            assert not b.send(peer.identity, grant("g", fence=1))  # forgotten
        finally:
            raw.close()


@asynccontextmanager
async def raw_engine(
    zctx: zmq.asyncio.Context, *, batches: bool, max_message_bytes: int = 16 << 20
) -> AsyncIterator[tuple[zmq.asyncio.Socket, str, list[bytes]]]:
    """A ROUTER that welcomes one Hello (saying ``batches`` of itself): the socket, its
    endpoint and the worker's identity (filled once the Hello came)."""
    sock = zctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    ident: list[bytes] = []
    welcome = Welcome(
        protocol=PROTOCOL_VERSION, engine_id="raw", heartbeat_interval_ms=1000,
        lease_ttl_ms=5000, max_message_bytes=max_message_bytes, batches=batches,
    )  # fmt: skip

    async def welcome_one() -> None:
        identity, frame = await sock.recv_multipart()
        got = decode_worker_message(frame)
        assert isinstance(got, Hello) and got.batches  # this worker reads batches
        ident.append(identity)
        await sock.send_multipart([identity, encode(welcome)])

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(welcome_one)
            yield sock, f"tcp://127.0.0.1:{port}", ident
    finally:
        sock.close(linger=0)


async def recv_worker_messages(sock: zmq.asyncio.Socket, count: int) -> list[list[object]]:
    """Frames from the worker until they held ``count`` messages: each frame's messages."""
    out: list[list[object]] = []
    with anyio.fail_after(10):
        while sum(map(len, out)) < count:
            _, frame = await sock.recv_multipart()
            msg = decode_worker_message(frame)
            inner = msg.frames if isinstance(msg, Batch) else [frame]
            out.append([decode_worker_message(f) for f in inner])
    return out


def results(n: int, size: int = 10) -> list[Result]:
    return [Result(work_item_id=f"item-{i}", fence=1, ok=True, output="x" * size) for i in range(n)]


@pytest.mark.parametrize("batches", [True, False], ids=["engine-reads-batches", "older-engine"])
async def test_a_worker_sends_one_turns_messages_in_one_frame_only_to_an_engine_that_reads_them(
    zctx: zmq.asyncio.Context, batches: bool
) -> None:
    async with (
        raw_engine(zctx, batches=batches) as (sock, endpoint, _),
        connection(endpoint, "w1") as conn,
    ):
        sent = results(3)
        for msg in sent:  # one loop turn: a held send does not wait
            await conn.send(msg)
        frames = await recv_worker_messages(sock, 3)
        assert [m for frame in frames for m in frame] == sent
        assert len(frames) == (1 if batches else 3)


async def test_a_workers_batches_stay_within_the_engines_frame_limit(
    zctx: zmq.asyncio.Context,
) -> None:
    limit = 1_000
    async with (
        raw_engine(zctx, batches=True, max_message_bytes=limit) as (sock, endpoint, _),
        connection(endpoint, "w1") as conn,
    ):
        sent = results(12, size=300)
        for msg in sent:
            await conn.send(msg)
        frames = await recv_worker_messages(sock, 12)
        assert [m for frame in frames for m in frame] == sent
        # Several share a frame, and no frame is larger than the engine reads.
        assert 1 < len(frames) < 12
        assert all(len(encode(Batch(frames=[encode(m) for m in f]))) <= limit for f in frames)


async def test_an_engine_batch_reaches_the_worker_message_by_message_bad_parts_dropped(
    zctx: zmq.asyncio.Context,
) -> None:
    async with (
        raw_engine(zctx, batches=True) as (sock, endpoint, ident),
        connection(endpoint, "w1") as conn,
    ):
        ack = Ack(work_item_id="a", fence=1, accepted=True)
        g = grant("g", fence=2)
        stray = Welcome(
                protocol=PROTOCOL_VERSION, engine_id="x", heartbeat_interval_ms=1,
                lease_ttl_ms=2,
            )  # fmt: skip
        frames = [encode(ack), b"\xc1", encode(stray), encode(g)]
        await sock.send_multipart([ident[0], encode(Batch(frames=frames))])
        got = await received(conn, 2)
        assert got == [ack, g]
        assert conn.engine_id == "raw"  # the Welcome inside was not taken


async def test_nothing_held_is_lost_while_the_engine_does_not_read(
    zctx: zmq.asyncio.Context,
) -> None:
    async with raw_engine(zctx, batches=True, max_message_bytes=64 * 1024) as (sock, endpoint, _):
        sock.setsockopt(zmq.RCVHWM, 2)
        async with connection(endpoint, "w1", hwm=2) as conn:  # welcomed: it reads no more
            sent: list[Result] = []
            waited = False
            while not waited:  # until a send waits: ZeroMQ's queue and TCP's are full
                msg = results(1, size=30_000)[0]
                msg = msgspec.structs.replace(msg, work_item_id=f"item-{len(sent)}")
                sent.append(msg)
                with anyio.move_on_after(0.5) as scope:
                    await conn.send(msg)
                waited = scope.cancelled_caught
                await anyio.sleep(0)  # the turn ends: what it held is sent (or waits for room)
                assert len(sent) < 10_000
            frames = await recv_worker_messages(sock, len(sent))
            assert [m for frame in frames for m in frame] == sent


def test_wire_frames_keep_order_and_bounds() -> None:
    frames = [encode(Credit(n=1)) for _ in range(3)]
    frames += [msgspec.msgpack.encode({"pad": "x" * (i * 7)}) for i in range(50)]
    wires = list(wire_frames(frames, max_bytes=200))
    out: list[bytes] = []
    for wire in wires:
        msg = msgspec.msgpack.decode(wire)
        if isinstance(msg, dict) and msg.get("type") == "batch":
            assert len(wire) <= 200
            out.extend(msg["frames"])
        else:  # one message alone: only one too large to share a frame
            out.append(wire)
    assert out == frames
    assert len(wires) < len(frames)
    assert list(wire_frames([b"one"])) == [b"one"]


async def test_a_real_engine_and_worker_pair_talk_in_batches(
    zctx: zmq.asyncio.Context,
) -> None:
    rec = Recorder()
    async with broker(rec) as b, connection(b.endpoint, "w1") as conn:
        assert conn.welcome.batches
        peer = await rec.wait_until(lambda: rec.joined_peer("w1"))
        assert peer.batches
        for i in range(5):
            b.send(peer.identity, grant(f"g{i}", fence=i + 1))
        got = await received(conn, 5)
        assert all(isinstance(msg, Grant) for msg in got)
        assert [msg.work_item_id for msg in got] == [f"g{i}" for i in range(5)]
        for i in range(5):
            await conn.send(Credit(n=i + 1))
        await rec.wait_until(lambda: len(rec.messages) == 5)
        assert [m for _, m in rec.messages] == [Credit(n=i + 1) for i in range(5)]
