"""``WorkerSet``: one worker process serving several engines (``tether worker --engine A
--engine B``), for engines sharing one Postgres database (``tether dev --shared``).

It runs one :class:`~tether.fleet.worker.Worker` per engine, each on its own connection with
its own share of the process's slots (``concurrency`` split evenly, at least one each), so the
concurrency limit holds whatever the engines grant. Each engine grants only the items of the
runs it owns, and a result goes back to the engine that granted it. When an engine dies, its
connection keeps trying to reach it while the others go on serving; the engine that takes its
runs over puts their leased items back to pending, grants them again (fence + 1), and the late
result of the dead engine's lease is refused by fence if it is ever delivered (I5).

Example::

    workers = WorkerSet(["tcp://h1:7701", "tcp://h2:7701"], tools=[fetch], concurrency=8)
    await workers.run()          # until request_stop(); each engine gets 4 slots
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio

from tether.fleet.connection import EngineUnreachable, HandshakeRefused
from tether.fleet.worker import Worker

log = logging.getLogger(__name__)


def slot_shares(concurrency: int, engines: int) -> list[int]:
    """``concurrency`` split over ``engines`` as evenly as whole numbers allow (each >= 1)."""
    base, extra = divmod(concurrency, engines)
    return [max(1, base + (1 if i < extra else 0)) for i in range(engines)]


class WorkerSet:
    """Several :class:`Worker` objects, one per engine endpoint; see the module docstring."""

    def __init__(self, endpoints: Sequence[str], *, concurrency: int = 8, **kwargs: Any) -> None:
        if not endpoints:
            raise ValueError("give at least one engine endpoint")
        if len(set(endpoints)) != len(endpoints):
            raise ValueError(f"an engine is named twice: {', '.join(endpoints)}")
        shares = slot_shares(concurrency, len(endpoints))
        self.workers = [
            Worker(endpoint, concurrency=share, **kwargs)
            for endpoint, share in zip(endpoints, shares, strict=True)
        ]

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self.workers)

    @property
    def stopping(self) -> bool:
        return any(w.stopping for w in self.workers)

    def request_stop(self) -> None:
        for worker in self.workers:
            worker.request_stop()

    async def run(self) -> None:
        """Serve every engine until :meth:`request_stop`. One engine that cannot be reached
        or refuses the worker is logged and the others are served; when none can be, the
        first engine's error is raised (as a single :class:`Worker` raises it)."""
        if len(self.workers) == 1:
            await self.workers[0].run()
            return
        failures: dict[int, BaseException] = {}

        async def serve(i: int, worker: Worker) -> None:
            try:
                await worker.run()
            except (EngineUnreachable, HandshakeRefused) as exc:
                failures[i] = exc
                log.error("worker: engine %s not served: %s", worker.endpoint, exc)

        async with anyio.create_task_group() as tg:
            for i, worker in enumerate(self.workers):
                tg.start_soon(serve, i, worker)
        if len(failures) == len(self.workers):
            raise failures[0]
