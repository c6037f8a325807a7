"""A test-side engine for the worker tests: a BrokerHandler that grants queued work against the
worker's credit and records everything the worker says."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

from tether.fleet import (
    Ack,
    Broker,
    Bye,
    Credit,
    EngineMessage,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    Peer,
    RateLimited,
    Result,
    WorkerMessage,
)

T = TypeVar("T")
Outcome = Result | RateLimited


def grant(
    work_item_id: str,
    tool: str,
    input: dict[str, Any] | None = None,
    *,
    fence: int = 1,
    timeout_secs: float | None = None,
) -> Grant:
    return Grant(
        work_item_id=work_item_id,
        fence=fence,
        execution_id="exec_1",
        node_id=f"node_{work_item_id}",
        attempt=1,
        dispatch=fence,
        tool=tool,
        input=input or {},
        timeout_secs=timeout_secs,
    )


class TestEngine:
    """Grants ``todo`` while the worker has credit; Acks outcomes (``accept``) unless ``ack`` is
    False; answers each Heartbeat with ``expire`` (then clears it)."""

    __test__ = False  # not a pytest class

    def __init__(self, *, ack: bool = True, accept: bool = True) -> None:
        self.ack = ack
        self.accept = accept
        self.todo: deque[Grant] = deque()
        self.granted: list[Grant] = []
        self.credit = 0
        self.peer: Peer | None = None
        self.joined: list[Peer] = []
        self.left: list[str] = []
        self.outcomes: list[Outcome] = []
        self.heartbeats: list[Heartbeat] = []
        self.credits: list[int] = []
        self.received: list[WorkerMessage] = []
        self.expire: list[LeaseRef] = []
        self.broker: Broker | None = None
        self._changed = anyio.Event()

    # --- driving --------------------------------------------------------------------------

    def add(self, *grants: Grant) -> None:
        self.todo.extend(grants)
        self._dispatch()

    def send(self, msg: EngineMessage) -> None:
        assert self.broker is not None and self.peer is not None
        assert self.broker.send(self.peer.identity, msg)

    def _dispatch(self) -> None:
        while self.todo and self.credit > 0 and self.peer is not None and self.broker:
            g = self.todo.popleft()
            self.credit -= 1
            self.granted.append(g)
            self.broker.send(self.peer.identity, g)
        self._notify()

    # --- queries --------------------------------------------------------------------------

    def outcome(self, work_item_id: str) -> Outcome | None:
        for o in self.outcomes:
            if o.work_item_id == work_item_id:
                return o
        return None

    def results(self) -> dict[str, Outcome]:
        return {o.work_item_id: o for o in self.outcomes}

    def held_in_heartbeats(self, work_item_id: str) -> bool:
        return any(ref.work_item_id == work_item_id for hb in self.heartbeats for ref in hb.leases)

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        with anyio.fail_after(timeout):
            while not (found := predicate()):
                await self._changed.wait()
            return found

    # --- BrokerHandler --------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def on_worker_joined(self, peer: Peer) -> None:
        self.peer = peer
        self.joined.append(peer)
        self.credit = peer.capacity
        self._dispatch()

    async def on_worker_left(self, peer: Peer, reason: str) -> None:
        self.left.append(reason)
        self._notify()

    async def on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        self.received.append(msg)
        if isinstance(msg, Credit):
            self.credits.append(msg.n)
            self.credit += msg.n
        elif isinstance(msg, Result | RateLimited):
            self.outcomes.append(msg)
            self.credit += msg.credit  # sent only when the Welcome says result_credits
            if self.ack and self.broker is not None:
                ack = Ack(work_item_id=msg.work_item_id, fence=msg.fence, accepted=self.accept)
                self.broker.send(peer.identity, ack)
        elif isinstance(msg, Heartbeat):
            self.heartbeats.append(msg)
            if self.broker is not None:
                self.broker.send(peer.identity, HeartbeatAck(expired=self.expire))
                self.expire = []
        elif isinstance(msg, Bye):  # pragma: no cover - the broker reports Bye as a departure
            pass
        self._dispatch()


@asynccontextmanager
async def engine_on(
    engine: TestEngine,
    endpoint: str = "tcp://127.0.0.1:0",
    *,
    heartbeat_interval_ms: int = 50,
    lease_ttl_ms: int = 2_000,
    engine_id: str = "eng-1",
    result_credits: bool = False,
) -> AsyncIterator[Broker]:
    """A Broker serving ``engine`` (on a free local port by default); ``result_credits``:
    it counts ``Result.credit`` (by default it is an older engine that does not)."""
    async with Broker(
        endpoint,
        engine,
        engine_id=engine_id,
        heartbeat_interval_ms=heartbeat_interval_ms,
        lease_ttl_ms=lease_ttl_ms,
        result_credits=result_credits,
    ) as broker:
        engine.broker = broker
        yield broker


@asynccontextmanager
async def running_worker(
    endpoint: str, tools: Any, *, drain_timeout: float = 10.0, **kwargs: Any
) -> AsyncIterator[Any]:
    """A Worker running in the background; drained (bounded) when the block ends."""
    from tether.fleet.worker import Worker

    kwargs.setdefault("worker_id", "w1")
    kwargs.setdefault("connect_timeout_secs", 5.0)
    worker = Worker(endpoint, tools=tools, **kwargs)
    done = anyio.Event()

    async def run() -> None:
        try:
            await worker.run()
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            yield worker
        finally:
            worker.request_stop()
            with anyio.fail_after(drain_timeout):
                await done.wait()


class Gate:
    """Counts concurrent calls of gated tools; they wait until ``open()``."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.started = 0
        self.cancelled: list[str] = []
        self._open = anyio.Event()

    def open(self) -> None:
        self._open.set()

    async def enter(self, name: str) -> None:
        self.current += 1
        self.started += 1
        self.peak = max(self.peak, self.current)
        try:
            await self._open.wait()
        except BaseException:
            self.cancelled.append(name)
            raise
        finally:
            self.current -= 1
