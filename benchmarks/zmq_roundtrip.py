"""ZeroMQ round trips from asyncio: which way of reading the engine's ROUTER, in one run.

Every figure is round trips per second between this process and an echo peer in another
process (so the peer gets its own CPU and GIL), 200-byte messages:

* blocking REQ/REP, one in flight: the bare baseline, no event loop;
* ``zmq.asyncio`` ROUTER, ``window`` in flight, one ``await`` per recv and per send;
* a batched reader: ``loop.add_reader`` on the socket's FD, drain with ``NOBLOCK`` until
  ``EAGAIN``, replies sent without awaiting (what ``tether.fleet`` does);
* the real ``Broker`` (protocol structs, peer table, handler callbacks) against a blocking peer
  that answers each Grant with a Result;
* the ``Broker`` against an ``EngineConnection`` peer (asyncio on both ends).

Run from the repo root::

    python -m benchmarks.zmq_roundtrip                  # n = 30000, window 500, 3 repeats
    python -m benchmarks.zmq_roundtrip --n 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import zmq
import zmq.asyncio

from tether.fleet import (
    PROTOCOL_VERSION,
    Broker,
    EngineConnection,
    Grant,
    Hello,
    Peer,
    Result,
    WorkerMessage,
    decode_engine_message,
    encode,
)

PAYLOAD = b"x" * 200
HWM = 100_000


# --- echo peers (run as `python -m benchmarks.zmq_roundtrip --peer KIND ENDPOINT`) -------------


def peer_rep(endpoint: str) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REP)
    sock.connect(endpoint)
    while True:
        sock.send(sock.recv())


def peer_dealer(endpoint: str) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.connect(endpoint)
    sock.send(b"ready")
    while True:
        sock.send(sock.recv())


def peer_fleet(endpoint: str) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.connect(endpoint)
    sock.send(encode(_hello("bench-blocking")))
    while True:
        msg = decode_engine_message(sock.recv())
        if isinstance(msg, Grant):
            sock.send(encode(_result(msg)))


def peer_connection(endpoint: str) -> None:
    async def main() -> None:
        async with EngineConnection(
            endpoint, worker_id="bench-conn", queues=["q"], capacity=1000, tools=["echo"]
        ) as conn:
            async for msg in conn.messages():
                if isinstance(msg, Grant):
                    await conn.send(_result(msg))

    anyio.run(main)


def _hello(worker_id: str) -> Hello:
    return Hello(
        protocol=PROTOCOL_VERSION,
        worker_id=worker_id,
        queues=["q"],
        capacity=1000,
        tools=["echo"],
        pid=0,
        host="bench",
    )


def _result(grant: Grant) -> Result:
    return Result(work_item_id=grant.work_item_id, fence=grant.fence, ok=True, output="y" * 100)


def _grant(i: int) -> Grant:
    return Grant(
        work_item_id=f"exec_01J0000000000000000000000/node/{i}",
        fence=i,
        execution_id="exec_01J0000000000000000000000",
        node_id="node",
        attempt=1,
        dispatch=i,
        tool="echo",
        input={"text": "x" * 60},
    )


PEERS: dict[str, Callable[[str], None]] = {
    "rep": peer_rep,
    "dealer": peer_dealer,
    "fleet": peer_fleet,
    "connection": peer_connection,
}


def spawn_peer(kind: str, endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.zmq_roundtrip", "--peer", kind, endpoint]
    )


# --- measurements: each returns round trips per second --------------------------------------


def blocking_req_rep(n: int, window: int) -> float:
    del window  # REQ/REP allows one in flight
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    sock.bind("tcp://127.0.0.1:0")
    peer = spawn_peer("rep", sock.getsockopt_string(zmq.LAST_ENDPOINT))
    try:
        for _ in range(min(1000, n)):  # warm-up, and waits for the peer to connect
            sock.send(PAYLOAD)
            sock.recv()
        started = time.perf_counter()
        for _ in range(n):
            sock.send(PAYLOAD)
            sock.recv()
        return n / (time.perf_counter() - started)
    finally:
        peer.kill()
        peer.wait()
        sock.close(linger=0)


async def asyncio_one_await(n: int, window: int) -> float:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.bind("tcp://127.0.0.1:0")
    peer = spawn_peer("dealer", sock.getsockopt_string(zmq.LAST_ENDPOINT))
    try:
        identity, _ = await sock.recv_multipart()
        started = time.perf_counter()
        sent = received = 0
        while sent < min(window, n):
            await sock.send_multipart([identity, PAYLOAD])
            sent += 1
        while received < n:
            await sock.recv_multipart()
            received += 1
            if sent < n:
                await sock.send_multipart([identity, PAYLOAD])
                sent += 1
        return n / (time.perf_counter() - started)
    finally:
        peer.kill()
        peer.wait()
        sock.close(linger=0)
        ctx.term()


async def batched_reader(n: int, window: int) -> float:
    loop = asyncio.get_running_loop()
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.bind("tcp://127.0.0.1:0")
    peer = spawn_peer("dealer", sock.getsockopt_string(zmq.LAST_ENDPOINT))
    done: asyncio.Future[None] = loop.create_future()
    identity = b""
    sent = received = 0
    started = 0.0

    def on_readable() -> None:
        nonlocal identity, sent, received, started
        # Drain until EAGAIN: the FD is edge-triggered, and our own sends may eat the edge.
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not identity:
                identity = frames[0]
                started = time.perf_counter()
                while sent < min(window, n):
                    sock.send_multipart([identity, PAYLOAD])
                    sent += 1
                continue
            received += 1
            if sent < n:
                sock.send_multipart([identity, PAYLOAD])
                sent += 1
            elif received >= n and not done.done():
                done.set_result(None)

    loop.add_reader(sock.fileno(), on_readable)
    try:
        on_readable()
        await done
        return n / (time.perf_counter() - started)
    finally:
        loop.remove_reader(sock.fileno())
        peer.kill()
        peer.wait()
        sock.close(linger=0)


class _GrantPump:
    """A handler that keeps ``window`` Grants in flight to the first worker until n Results."""

    def __init__(self, n: int, window: int) -> None:
        self.n = n
        self.window = window
        self.broker: Broker | None = None
        self.sent = 0
        self.received = 0
        self.started = 0.0
        self.done = anyio.Event()

    async def on_worker_joined(self, peer: Peer) -> None:
        assert self.broker is not None
        self.started = time.perf_counter()
        while self.sent < min(self.window, self.n):
            self.broker.send(peer.identity, _grant(self.sent))
            self.sent += 1

    async def on_worker_left(self, peer: Peer, reason: str) -> None:
        raise RuntimeError(f"benchmark peer left: {reason}")

    async def on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        assert self.broker is not None
        self.received += 1
        if self.sent < self.n:
            self.broker.send(peer.identity, _grant(self.sent))
            self.sent += 1
        elif self.received >= self.n:
            self.done.set()


async def _broker_with(kind: str, n: int, window: int) -> float:
    pump = _GrantPump(n, window)
    async with Broker("tcp://127.0.0.1:0", pump, engine_id="bench", hwm=HWM) as broker:
        pump.broker = broker
        peer = spawn_peer(kind, broker.endpoint)
        try:
            await pump.done.wait()
            return n / (time.perf_counter() - pump.started)
        finally:
            peer.kill()
            peer.wait()


async def broker_blocking_peer(n: int, window: int) -> float:
    return await _broker_with("fleet", n, window)


async def broker_connection_peer(n: int, window: int) -> float:
    return await _broker_with("connection", n, window)


Measure = Callable[[int, int], Awaitable[float]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30_000, help="round trips per measurement")
    parser.add_argument("--window", type=int, default=500, help="round trips in flight")
    parser.add_argument("--repeats", type=int, default=3, help="report the median of this many")
    parser.add_argument("--peer", nargs=2, metavar=("KIND", "ENDPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        PEERS[args.peer[0]](args.peer[1])
        return

    async def run_async(measure: Measure) -> float:
        return await measure(args.n, args.window)

    cases: list[tuple[str, Callable[[], float]]] = [
        ("blocking REQ/REP, 1 in flight", lambda: blocking_req_rep(args.n, args.window)),
        ("zmq.asyncio ROUTER, one await/message", lambda: anyio.run(run_async, asyncio_one_await)),
        ("batched reader (add_reader + drain)", lambda: anyio.run(run_async, batched_reader)),
        ("Broker <- blocking protocol peer", lambda: anyio.run(run_async, broker_blocking_peer)),
        ("Broker <- EngineConnection peer", lambda: anyio.run(run_async, broker_connection_peer)),
    ]
    print(
        f"ZeroMQ round trips, {len(PAYLOAD)}-byte payloads, n={args.n}, window={args.window}, "
        f"median of {args.repeats} (pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()})"
    )
    baseline = 0.0
    for name, run in cases:
        rates = [run() for _ in range(args.repeats)]
        rate = statistics.median(rates)
        baseline = baseline or rate
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(
            f"  {name:40s} {rate:>9,.0f} round trips/s  ({spread})  "
            f"{1e6 / rate:6.1f} us each  {rate / baseline:5.2f}x"
        )


if __name__ == "__main__":
    main()
