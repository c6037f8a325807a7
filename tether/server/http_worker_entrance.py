"""The HTTP workers' way in, opened with the runtime's other worker transports.

After an engine restart the scheduler gives the leases it adopts a short grace (0.5 s) from
when workers can reach it, then reclaims those nobody spoke for. The HTTP gateway speaks for
its workers' leases when it adopts them; adopted from the server's lifespan after the runtime
had started, a busy start could let the grace run out first, and a step an HTTP worker was
running was taken back and run again. Opened as a worker transport, the gateway adopts right
after the ZeroMQ fleet's port opens, inside the runtime's start.

Example (what the server's lifespan does)::

    entrance = HttpWorkerEntrance(runtime, key, lease_ttl_secs=30.0, queues=None)
    runtime.add_transport(entrance)
    async with runtime:
        gateway = await entrance.opened()
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from tether.runtime.internals import RuntimeInternals
from tether.runtime.runtime import Runtime
from tether.server.http_workers import HttpWorkers
from tether.server.lease_tokens import LeaseKey


class HttpWorkerEntrance:
    """Builds the HTTP gateway and adopts its workers' leases once the runtime runs."""

    def __init__(
        self,
        runtime: Runtime,
        key: LeaseKey,
        *,
        lease_ttl_secs: float,
        queues: frozenset[str] | None,
    ) -> None:
        self._runtime = runtime
        self._key = key
        self._ttl = lease_ttl_secs
        self._queues = queues
        self._gateway: HttpWorkers | None = None

    async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None:
        """As a worker transport: adopt now, during the runtime's start."""
        await self.opened()

    async def opened(self) -> HttpWorkers:
        """The gateway, built and its leases adopted the first time (the runtime must run)."""
        if self._gateway is None:
            gateway = HttpWorkers(
                self._runtime, self._key, lease_ttl_secs=self._ttl, queues=self._queues
            )
            await gateway.adopt()  # before serving: a worker's first call finds its lease
            self._gateway = gateway
        return self._gateway
