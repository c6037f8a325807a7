"""Prometheus metrics of one running :class:`~tether.runtime.runtime.Runtime`.

Each runtime gets its own ``CollectorRegistry`` (never prometheus_client's global one), so
two runtimes in a process do not mix. Counting starts when :func:`runtime_metrics` is first
called on an open runtime; ``tether dev`` calls it at start and serves ``GET /metrics``.

Example::

    async with Runtime("sqlite:///runs.db", tools=[...]) as rt:
        metrics = runtime_metrics(rt)
        ...
        body = await metrics.scrape()          # Prometheus text format
        # or, with your own exposition: await metrics.refresh(); use metrics.registry
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tether.persistence.contract import EXECUTION_STATUSES
from tether.persistence.pages import ExecutionQuery
from tether.runtime.internals import runtime_internals
from tether.runtime.metrics.collector import RuntimeCollector
from tether.runtime.metrics.tally import TurnTally
from tether.runtime.services import Services

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime

__all__ = ["CONTENT_TYPE_LATEST", "RuntimeMetrics", "runtime_metrics"]


class RuntimeMetrics(TurnTally):
    """A runtime's metrics: the turn hook that counts, and the registry that exposes them."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self._statuses: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(RuntimeCollector(services, self, self._statuses))

    async def refresh(self) -> None:
        """Read the executions-by-status gauge from the run views' counters, once they hold
        every status change committed so far (a scrape is rare; the projector is usually
        caught up already, and then this costs nothing)."""
        await self._services.views.catch_up()
        counts = await self._services.store.count_executions(ExecutionQuery())
        for status in EXECUTION_STATUSES:
            self._statuses[status] = counts.get(status, 0)

    async def scrape(self) -> bytes:
        """Everything, in the Prometheus text format (``CONTENT_TYPE_LATEST``)."""
        await self.refresh()
        return generate_latest(self.registry)


def runtime_metrics(rt: Runtime) -> RuntimeMetrics:
    """The metrics of the open runtime ``rt``, counting from the first call on."""
    services = runtime_internals(rt).services
    hook = services.counters.on_turn
    if isinstance(hook, RuntimeMetrics):
        return hook
    metrics = RuntimeMetrics(services)
    services.counters.on_turn = metrics
    return metrics
