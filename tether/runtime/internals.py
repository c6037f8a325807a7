"""What the layers above the runtime may reach inside a :class:`Runtime`.

The server, the worker transports and the testing helpers need more of a runtime than its
users do: to write a workflow to the registry without starting it, to read the compiled graph
replay folds against, to talk to the scheduler, to look at the services the actors share.
They reach it through :func:`runtime_internals`, never through ``rt._services`` or public
``Runtime`` methods made for them, so the public surface stays what users need and this one
interface says what the layers above depend on.

Example::

    internals = runtime_internals(rt)
    await internals.persist(wf)
    await internals.tell_scheduler(WorkerCredit("http/w1", 1))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tether.actors import ActorRef
from tether.ir.types import Workflow
from tether.runtime.graph import Graph
from tether.runtime.services import Services
from tether.runtime.signals import SendEvent

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime


class RuntimeInternals:
    """A running runtime's inside, for the server, transports and testing helpers."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def services(self) -> Services:
        """What the actors share (store, scheduler, ledger, pool); raises if not running."""
        return self._runtime._svc

    @property
    def engine_id(self) -> str:
        """The id this engine gives itself to its workers."""
        return self._runtime.engine_id

    @property
    def scheduler(self) -> ActorRef:
        """The scheduler actor (a transport's peers are its workers)."""
        return self._scheduler()

    @property
    def lease_ttl_ms(self) -> int:
        """How long a remote worker's lease lives without a heartbeat."""
        return self.services.lease_ttl_ms

    def digest(self, wf: Workflow) -> str:
        """``wf``'s content digest, without hashing it again when it is the registry's copy."""
        return self._runtime._registry.digest(wf)

    async def persist(self, wf: Workflow) -> None:
        """Write ``wf`` to the registry (or check the registry holds the same content)."""
        await self._runtime._persist(wf)

    async def graph(self, workflow_id: str, version: str) -> Graph:
        """The compiled graph of a registered version (what replay folds against)."""
        return await self.services.graph(workflow_id, version)

    async def start_own(
        self, workflow: str, input: Mapping[str, Any] | None, execution_id: str
    ) -> None:
        """Start a run under an id the runtime makes itself (a child's: ``...~child1.3``,
        which a user may not give); a second start with the same id is a no-op. ``workflow``
        is a ref, or a code-first body this runtime holds (``id`` or ``id@version``)."""
        bodies = self.services.code_workflows.values()
        body = next((b for b in bodies if workflow in (b.ref, b.workflow_id)), None)
        wf, given = await self._runtime._prepare(body or workflow, input)
        await self._runtime._start_with_id(wf, given, execution_id)

    async def send_own_event(self, execution_id: str, event: SendEvent) -> None:
        """Deliver an event the runtime itself sends (a child's end): its ``tether.`` key is
        refused from outside."""
        await self._runtime._signal(execution_id, event)

    async def tell_scheduler(self, message: object) -> None:
        """Hand a worker transport's message to the scheduler: ``WorkerJoined``,
        ``WorkerCredit``, ``WorkerHeartbeat``, ``WorkerReport`` or ``WorkerLeft`` (see
        :mod:`tether.runtime.scheduler_messages`)."""
        await self._scheduler().tell(message)

    async def ask_scheduler(self, message: object) -> object:
        """Ask the scheduler (``GetLeases``: its live remote leases, by work item id)."""
        return await self._scheduler().ask(message, timeout=None)

    def _scheduler(self) -> ActorRef:
        scheduler = self.services.scheduler
        if scheduler is None:
            raise RuntimeError("this runtime has no scheduler (it is not running)")
        return scheduler


def runtime_internals(runtime: Runtime) -> RuntimeInternals:
    """The internal interface of ``runtime`` (see the module docstring)."""
    return RuntimeInternals(runtime)
