"""The ZeroMQ worker port, plugged into a Runtime from above.

Beyond loopback the port needs worker keys (I14, see :mod:`tether.fleet.keys`)::

    fleet = ZmqFleet("tcp://0.0.0.0:7701",
                     keys=EngineKeys.from_files("keys/engine.key_secret", "keys/workers"))
    async with Runtime("sqlite:///runs.db", transports=[fleet], max_concurrency=0) as rt:
        print(fleet.endpoint)        # the bound endpoint (a port 0 resolved)
        # `tether worker --engine tcp://host:7701 --modules my_tools` serves its steps
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from tether.fleet.broker import DEFAULT_MAX_WORKERS_PER_PRINCIPAL
from tether.fleet.engine_link import FleetLink
from tether.fleet.keys import EngineKeys, InsecureEndpoint, beyond_loopback
from tether.fleet.liveness import DEFAULT_HEARTBEAT_INTERVAL_MS
from tether.fleet.protocol import DEFAULT_MAX_MESSAGE_BYTES
from tether.runtime.internals import RuntimeInternals
from tether.runtime.scheduler_messages import WorkersCanConnect


class ZmqFleet:
    """A :class:`~tether.runtime.transports.WorkerTransport`: binds a broker whose peers
    (``tether worker`` processes) serve the runtime's scheduler."""

    def __init__(
        self,
        endpoint: str,
        *,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        keys: EngineKeys | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_workers_per_principal: int = DEFAULT_MAX_WORKERS_PER_PRINCIPAL,
        silence_ms: int | None = None,
    ) -> None:
        """``silence_ms``: a worker that says nothing this long is gone and its leases are
        reclaimed (default: 2.5 heartbeat intervals, at least 1 s; never more than the lease
        TTL)."""
        if keys is None and beyond_loopback(endpoint):
            raise InsecureEndpoint(endpoint)  # said here, before a runtime opens around it
        #: The endpoint to bind; once the runtime is open, the one bound.
        self.endpoint = endpoint
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._keys = keys
        self._max_message_bytes = max_message_bytes
        self._max_workers_per_principal = max_workers_per_principal
        self._silence_ms = silence_ms

    async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None:
        broker = await stack.enter_async_context(
            FleetLink.broker(
                self.endpoint,
                internals.scheduler,
                engine_id=internals.engine_id,
                heartbeat_interval_ms=self._heartbeat_interval_ms,
                lease_ttl_ms=internals.lease_ttl_ms,
                keys=self._keys,
                max_message_bytes=self._max_message_bytes,
                max_workers_per_principal=self._max_workers_per_principal,
                silence_ms=self._silence_ms,
                ledger=internals.services.ledger,
            )
        )
        self.endpoint = broker.endpoint
        # Leases adopted at start get their grace for a live worker to claim them from now,
        # and expire when a worker as long silent would be taken as gone here.
        await internals.scheduler.tell(WorkersCanConnect(silence_ms=broker.silence_ms))
