"""The ZeroMQ worker port, plugged into a Runtime from above.

Example::

    fleet = ZmqFleet("tcp://0.0.0.0:7701")
    async with Runtime("sqlite:///runs.db", transports=[fleet], max_concurrency=0) as rt:
        print(fleet.endpoint)        # the bound endpoint (a port 0 resolved)
        # `tether worker --engine tcp://host:7701 --modules my_tools` serves its steps
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from tether.fleet.engine_link import FleetLink
from tether.runtime.internals import RuntimeInternals


class ZmqFleet:
    """A :class:`~tether.runtime.transports.WorkerTransport`: binds a broker whose peers
    (``tether worker`` processes) serve the runtime's scheduler."""

    def __init__(self, endpoint: str, *, heartbeat_interval_ms: int = 1_000) -> None:
        #: The endpoint to bind; once the runtime is open, the one bound.
        self.endpoint = endpoint
        self._heartbeat_interval_ms = heartbeat_interval_ms

    async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None:
        broker = await stack.enter_async_context(
            FleetLink.broker(
                self.endpoint,
                internals.scheduler,
                engine_id=internals.engine_id,
                heartbeat_interval_ms=self._heartbeat_interval_ms,
                lease_ttl_ms=internals.lease_ttl_ms,
            )
        )
        self.endpoint = broker.endpoint
