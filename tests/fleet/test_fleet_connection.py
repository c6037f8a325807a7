"""The worker's EngineConnection: unreachable engines, refusals, engine restarts, bad frames."""

from __future__ import annotations

import anyio
import pytest
import zmq
import zmq.asyncio
from fleet_helpers import Recorder, ack_results, connection

from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Broker,
    Cancel,
    EngineConnection,
    EngineUnreachable,
    HandshakeRefused,
    Heartbeat,
    ProtocolError,
    Reconnected,
    Result,
    Welcome,
    encode,
)
from tether.fleet.protocol import ERR_PROTOCOL_VERSION
from tether.testing.loopback import free_loopback_port as free_port

pytestmark = pytest.mark.anyio


async def test_nobody_listening_raises_engine_unreachable_within_timeout() -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    started = anyio.current_time()
    # The outer bound only catches a hang: EngineUnreachable (not TimeoutError) says the
    # connection gave up on its own timeout, before that bound.
    with anyio.fail_after(30), pytest.raises(EngineUnreachable) as info:
        async with connection(endpoint, "w1", connect_timeout_secs=0.3):
            pass
    elapsed = anyio.current_time() - started
    assert info.value.endpoint == endpoint
    # Not before its timeout, and it reports the time it really waited (measured inside ours).
    assert 0.3 <= info.value.waited_secs <= elapsed
    assert endpoint in str(info.value) and "0.3 s" in str(info.value)


class FakeEngine:
    """A hand-driven ROUTER: answers each Hello with ``answer`` frames."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:0")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    async def answer_hello(self, *frames: bytes) -> bytes:
        identity, _hello = await self.sock.recv_multipart()
        for frame in frames:
            await self.sock.send_multipart([identity, frame])
        return identity


async def test_protocol_version_refusal_raises_handshake_refused(
    zctx: zmq.asyncio.Context,
) -> None:
    engine = FakeEngine(zctx)
    refusal = ProtocolError(code=ERR_PROTOCOL_VERSION, message="engine speaks protocol 2")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.answer_hello, encode(refusal))
            with pytest.raises(HandshakeRefused, match=r"protocol_version.*protocol 2") as info:
                async with connection(engine.endpoint, "w1"):
                    pass
    assert info.value.code == ERR_PROTOCOL_VERSION


async def test_bad_engine_frames_are_skipped_and_early_messages_kept(
    zctx: zmq.asyncio.Context, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(zctx)
    welcome = Welcome(
        protocol=PROTOCOL_VERSION, engine_id="fake", heartbeat_interval_ms=50, lease_ttl_ms=200
    )
    cancel = Cancel(work_item_id="x", fence=1, reason="r")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.answer_hello, b"\xc1", encode(cancel), encode(welcome))
            async with connection(engine.endpoint, "w1") as conn:
                assert conn.engine_id == "fake"
                # A message that came before the Welcome is kept for the stream.
                assert await anext(conn.messages()) == cancel
    assert "bad frame" in caplog.text


async def test_engine_restart_on_same_port_yields_reconnected_and_traffic_flows() -> None:
    first = Recorder(reply=ack_results)
    async with Broker(
        "tcp://127.0.0.1:0", first, engine_id="eng-1", heartbeat_interval_ms=50, lease_ttl_ms=500
    ) as b1:
        first.broker = b1
        endpoint = b1.endpoint
        conn = connection(endpoint, "w1")
        await conn.__aenter__()
    try:
        assert conn.engine_id == "eng-1"
        second = Recorder(reply=ack_results)
        async with Broker(
            endpoint, second, engine_id="eng-2", heartbeat_interval_ms=50, lease_ttl_ms=500
        ) as b2:
            second.broker = b2
            seen: list[object] = []
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:

                    async def heartbeat() -> None:
                        # What a worker does anyway; the engine's answer starts the re-Hello.
                        while True:
                            await conn.send(Heartbeat())
                            await anyio.sleep(0.05)

                    tg.start_soon(heartbeat)
                    async for msg in conn.messages():
                        seen.append(msg)
                        if isinstance(msg, Reconnected):
                            break
                    tg.cancel_scope.cancel()
                assert seen == [Reconnected(engine_id="eng-2", incarnation=b2.incarnation)]
                assert conn.engine_id == "eng-2"
                await second.wait_until(lambda: second.joined_peer("w1"))
                await conn.send(Result(work_item_id="after", fence=1, ok=True))
                async for msg in conn.messages():
                    if isinstance(msg, Ack):
                        assert msg == Ack(work_item_id="after", fence=1, accepted=True)
                        break
    finally:
        await conn.__aexit__(None, None, None)


async def test_forgotten_worker_says_hello_again_on_hello_required() -> None:
    rec = Recorder(reply=ack_results)
    async with Broker(
        "tcp://127.0.0.1:0", rec, engine_id="eng", heartbeat_interval_ms=50, lease_ttl_ms=150
    ) as b:
        rec.broker = b
        async with connection(b.endpoint, "w1") as conn:
            await rec.wait_until(lambda: rec.left_reason("w1"))  # silent past the TTL
            await conn.send(Heartbeat())
            with anyio.fail_after(5):
                again = Reconnected(engine_id="eng", incarnation=b.incarnation)
                assert await anext(conn.messages()) == again
            await rec.wait_until(lambda: len(rec.joined) == 2)
            assert b.peer_for("w1") is rec.joined[1]


async def test_messages_ends_when_the_connection_closes() -> None:
    rec = Recorder()
    async with Broker("tcp://127.0.0.1:0", rec, engine_id="eng") as b:
        conn: EngineConnection = connection(b.endpoint, "w1")
        got: list[object] = []
        with anyio.fail_after(5):
            async with conn:

                async def read() -> None:
                    async for msg in conn.messages():
                        got.append(msg)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    await anyio.sleep(0)
                    await conn.__aexit__(None, None, None)
        assert got == []
        with pytest.raises(RuntimeError, match="closed"):
            await conn.send(Heartbeat())
