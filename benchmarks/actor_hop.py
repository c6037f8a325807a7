"""How much one mailbox hop costs: bare queues against the actor kernel, in one run.

A hop is one message handed from one task to another. A ping-pong round trip is two hops;
an ask round trip is two hops too (request, answer). Tell throughput counts messages a
producer pushes through one actor (the consumer is woken only when it ran dry).

Run from the repo root::

    python -m benchmarks.actor_hop            # n = 100000 round trips / messages
    python -m benchmarks.actor_hop --n 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from tether.actors import Actor, ActorSystem
from tether.actors._mailbox import Mailbox


async def asyncio_queue_ping_pong(n: int) -> int:
    ping: asyncio.Queue[int] = asyncio.Queue()
    pong: asyncio.Queue[int] = asyncio.Queue()

    async def echo() -> None:
        while True:
            value = await ping.get()
            if value < 0:
                return
            pong.put_nowait(value)

    task = asyncio.create_task(echo())
    for i in range(n):
        ping.put_nowait(i)
        await pong.get()
    ping.put_nowait(-1)
    await task
    return 2 * n


async def anyio_stream_ping_pong(n: int) -> int:
    ping_send, ping_recv = anyio.create_memory_object_stream[int](1000)
    pong_send, pong_recv = anyio.create_memory_object_stream[int](1000)

    async def echo(inbox: ObjectReceiveStream[int], outbox: ObjectSendStream[int]) -> None:
        async with inbox, outbox:
            async for value in inbox:
                await outbox.send(value)

    async with anyio.create_task_group() as tg:
        tg.start_soon(echo, ping_recv, pong_send)
        async with ping_send, pong_recv:
            for i in range(n):
                await ping_send.send(i)
                await pong_recv.receive()
    return 2 * n


async def mailbox_ping_pong(n: int) -> int:
    ping = Mailbox("ping", 1000)
    pong = Mailbox("pong", 1000)

    async def echo() -> None:
        while True:
            item = await ping.get()
            assert isinstance(item, tuple)
            if item[0] is None:
                return
            pong.put_nowait(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        for i in range(n):
            ping.put_nowait((i, None))
            await pong.get()
        ping.put_nowait((None, None))
    return 2 * n


class _Echo(Actor):
    async def on_receive(self, message: object) -> object:
        return message


class _Count(Actor):
    def __init__(self) -> None:
        self.seen = 0

    async def on_receive(self, message: object) -> object:
        if message == "total":
            return self.seen
        self.seen += 1
        return None


async def actor_ask(n: int, timeout: float | None) -> int:
    async with ActorSystem() as system:
        echo = await system.spawn(_Echo, name="echo")
        for i in range(n):
            await echo.ask(i, timeout=timeout)
    return 2 * n


async def actor_ask_no_timeout(n: int) -> int:
    return await actor_ask(n, None)


async def actor_ask_timeout(n: int) -> int:
    return await actor_ask(n, 5.0)


async def actor_tell(n: int) -> int:
    async with ActorSystem() as system:
        counter = await system.spawn(_Count, name="counter")
        for i in range(n):
            await counter.tell(i)
        assert await counter.ask("total", timeout=None) == n
    return n


CASES: list[tuple[str, Callable[[int], Awaitable[int]]]] = [
    ("bare asyncio.Queue ping-pong", asyncio_queue_ping_pong),
    ("bare anyio memory stream ping-pong", anyio_stream_ping_pong),
    ("kernel Mailbox, bare ping-pong", mailbox_ping_pong),
    ("ActorRef.ask ping-pong, timeout=None", actor_ask_no_timeout),
    ("ActorRef.ask ping-pong, timeout=5.0", actor_ask_timeout),
    ("ActorRef.tell throughput", actor_tell),
]


async def measure(n: int, repeats: int) -> list[tuple[str, float]]:
    results = []
    for label, case in CASES:
        await case(min(n, 1000))  # warm up
        best = 0.0
        for _ in range(repeats):
            started = time.perf_counter()
            hops = await case(n)
            best = max(best, hops / (time.perf_counter() - started))
        results.append((label, best))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="round trips / messages per case")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    results = anyio.run(measure, args.n, args.repeats, backend="asyncio")
    baseline = results[0][1]
    print(f"n={args.n}, best of {args.repeats}")
    for label, rate in results:
        print(f"{label:<40} {rate / 1000:>8.1f}k hops/s  {rate / baseline:>5.2f}x asyncio.Queue")


if __name__ == "__main__":
    main()
