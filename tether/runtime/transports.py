"""The seam through which workers outside this process reach the scheduler.

The runtime knows no network: a transport (the ZeroMQ fleet, :class:`tether.fleet.ZmqFleet`)
is plugged in from above by ``Runtime(transports=[...])``. Each is opened once the runtime has
recovered its executions and closed with the runtime; it turns its peers into the scheduler's
workers through :class:`~tether.runtime.internals.RuntimeInternals` (``WorkerJoined``,
``WorkerReport``, ``WorkerLeft``, ... in :mod:`tether.runtime.scheduler_messages`).

Example::

    class MyTransport:
        async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None:
            server = await stack.enter_async_context(serve(internals.tell_scheduler))
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Protocol

from tether.runtime.internals import RuntimeInternals


class WorkerTransport(Protocol):
    """Opens a way for remote workers to serve this runtime; closed with ``stack``."""

    async def open(self, internals: RuntimeInternals, stack: AsyncExitStack) -> None: ...
