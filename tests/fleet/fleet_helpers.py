"""Test helpers: a recording BrokerHandler, connection factories and a raw DEALER peer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import msgspec
import zmq
import zmq.asyncio

from tether.fleet import (
    PROTOCOL_VERSION,
    Ack,
    Broker,
    EngineConnection,
    EngineMessage,
    Hello,
    Peer,
    ProtocolError,
    Result,
    WorkerMessage,
    decode_engine_message,
    encode,
)

T = TypeVar("T")
Reply = Callable[[Peer, WorkerMessage], EngineMessage | None]


def ack_results(peer: Peer, msg: WorkerMessage) -> Ack | None:
    """A Reply that accepts every Result."""
    if isinstance(msg, Result):
        return Ack(work_item_id=msg.work_item_id, fence=msg.fence, accepted=True)
    return None


class Recorder:
    """A BrokerHandler that records every callback; optionally answers messages."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.joined: list[Peer] = []
        self.left: list[tuple[Peer, str]] = []
        self.messages: list[tuple[Peer, WorkerMessage]] = []
        self.reply = reply
        self.broker: Broker | None = None
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def on_worker_joined(self, peer: Peer) -> None:
        self.joined.append(peer)
        self._notify()

    async def on_worker_left(self, peer: Peer, reason: str) -> None:
        self.left.append((peer, reason))
        self._notify()

    async def on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        self.messages.append((peer, msg))
        if self.reply is not None and self.broker is not None:
            answer = self.reply(peer, msg)
            if answer is not None:
                self.broker.send(peer.identity, answer)
        self._notify()

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait (bounded) until ``predicate()`` is truthy after some callback; return it."""
        with anyio.fail_after(timeout):
            while not (found := predicate()):
                await self._changed.wait()
            return found

    def left_reason(self, worker_id: str) -> str | None:
        for peer, reason in self.left:
            if peer.worker_id == worker_id:
                return reason
        return None

    def joined_peer(self, worker_id: str) -> Peer | None:
        for peer in reversed(self.joined):
            if peer.worker_id == worker_id:
                return peer
        return None


def connection(
    endpoint: str,
    worker_id: str,
    *,
    capacity: int = 4,
    tools: Sequence[str] = ("echo",),
    connect_timeout_secs: float = 5.0,
    **kwargs: Any,
) -> EngineConnection:
    return EngineConnection(
        endpoint,
        worker_id=worker_id,
        queues=["default"],
        capacity=capacity,
        tools=list(tools),
        connect_timeout_secs=connect_timeout_secs,
        **kwargs,
    )


async def received(conn: EngineConnection, n: int, timeout: float = 5.0) -> list[Any]:
    """The next ``n`` messages ``conn`` hands on, in order (failing after ``timeout``)."""
    got: list[Any] = []
    with anyio.fail_after(timeout):
        async for msg in conn.messages():
            got.append(msg)
            if len(got) == n:
                break
    return got


def hello(worker_id: str, protocol: int = PROTOCOL_VERSION) -> Hello:
    return Hello(
        protocol=protocol,
        worker_id=worker_id,
        queues=["default"],
        capacity=1,
        tools=[],
        pid=1,
        host="test",
    )


class RawPeer:
    """A hand-driven DEALER: sends arbitrary frames, reads the engine's answers."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    async def send_frames(self, *frames: bytes) -> None:
        await self.sock.send_multipart(list(frames))

    async def send_obj(self, obj: object) -> None:
        await self.sock.send(msgspec.msgpack.encode(obj))

    async def send(self, msg: WorkerMessage) -> None:
        await self.sock.send(encode(msg))

    async def recv(self, timeout: float = 5.0) -> EngineMessage:
        with anyio.fail_after(timeout):
            return decode_engine_message(await self.sock.recv())

    async def expect_error(self, code: str) -> ProtocolError:
        msg = await self.recv()
        assert isinstance(msg, ProtocolError), msg
        assert msg.code == code, msg
        return msg

    def close(self) -> None:
        self.sock.close(linger=0)
