"""The embedded runtime: ``async with Runtime(...)`` inside any service, no server needed.

Example::

    @tool
    async def add_one(n: int) -> int:
        return n + 1

    async with Runtime("sqlite:///.tether/runtime.db", tools=[add_one]) as rt:
        wf = rt.register_yaml(Path("examples/counter.yaml"))
        run = await rt.start(wf, input={"n": 0})
        print(await run.result())                       # {'n': 3}
        print([e.type for e in await rt.journal(run.id)])

A tool input written ``${secret:NAME}`` is journaled as that reference; the in-process pool
gives the tool the value from ``secrets=`` (a mapping, a function of the name, or a
:class:`~tether.runtime.secrets.SecretSource`; default: the environment's
``TETHER_SECRET_<NAME>``), and scrubs it from what a failure says.

While it runs, the garbage collector's young generation is collected every 50,000 allocations
instead of 700 and what exists after start-up is frozen (``gc_threshold``; process-wide, put
back on exit; ``gc_threshold=None`` leaves the collector alone: ``tether.runtime.gc_tuning``).

Leaving the block stops the actors and cancels running tools; executions that had not
finished stay in the journal and the next ``Runtime`` on the same file resumes them.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc

from tether.actors import ActorRef, ActorStopped, ActorSystem, MailboxFull
from tether.clock import Clock, SystemClock
from tether.errors import ExecutionBroken, ExecutionIdInUse
from tether.ir.types import Workflow
from tether.persistence import Store, open_store
from tether.persistence.artifacts.front import DEFAULT_ARTIFACT_THRESHOLD
from tether.persistence.contract import Durability, ScheduleRow, SequenceConflict
from tether.persistence.ownership import DEFAULT_OWNERSHIP_TTL_MS, OwnedElsewhere
from tether.runtime.announced_tools import AnnouncedTools, ToolServed
from tether.runtime.artifacts import RuntimeArtifacts, checked_threshold, spilling
from tether.runtime.assembly import (
    CRON_NAME,
    check_given_id,
    join_local_pool,
    start_scheduling,
)
from tether.runtime.child_runs import RuntimeChildRuns
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.cron import CronActor
from tether.runtime.execution import StartExecution
from tether.runtime.executor import InProcessExecutor, NodeExecutor, NodeOutcome
from tether.runtime.gc_tuning import DEFAULT_GC_THRESHOLD, GcTuning
from tether.runtime.ids import new_execution_id
from tether.runtime.internals import runtime_internals
from tether.runtime.node_kinds import NodeKinds
from tether.runtime.ownership import SharedEngine, new_engine_id
from tether.runtime.ownership.runtime_hooks import ask_or_forward, open_shared
from tether.runtime.passivation import Activations
from tether.runtime.registry import WorkflowRegistry
from tether.runtime.run import Run
from tether.runtime.runnable import QueueUsers
from tether.runtime.runtime_reads import ExecutionReads
from tether.runtime.runtime_signals import ExecutionSignals
from tether.runtime.runtime_spawning import ExecutionSpawning
from tether.runtime.runtime_workflows import RuntimeWorkflows
from tether.runtime.schedule_api import Schedules
from tether.runtime.scheduler import (
    DEFAULT_LEASE_TTL_MS,
)
from tether.runtime.secrets import SecretsArg, secret_source
from tether.runtime.services import Services
from tether.runtime.storage_revival import StorageRevival
from tether.runtime.time_travel.runtime_travel import ExecutionTimeTravel
from tether.runtime.tools import Tool, ToolFn, ToolRegistry
from tether.runtime.transports import WorkerTransport

DEFAULT_DATABASE_URL = "sqlite:///.tether/runtime.db"


class Runtime(
    ExecutionReads,
    ExecutionSignals,
    ExecutionTimeTravel,
    RuntimeArtifacts,
    RuntimeWorkflows,
    ExecutionSpawning,
):
    """Durable workflow runtime over one journal database. See the module docstring.

    Its workflows (``register``, ``workflow``, ...) are in
    :mod:`tether.runtime.runtime_workflows`; spawning, recovering and supervising execution
    actors in :mod:`tether.runtime.runtime_spawning`."""

    def __init__(
        self,
        url: str = DEFAULT_DATABASE_URL,
        *,
        tools: Iterable[Tool | ToolFn] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
        durability: Durability = "full",
        snapshot_every: int = 100,
        max_concurrency: int = 256,
        executor: NodeExecutor | None = None,
        store: Store | None = None,
        transports: Iterable[WorkerTransport] = (),
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        engine_id: str = "engine",
        cron: bool = True,
        secrets: SecretsArg = None,
        gc_threshold: int | None = DEFAULT_GC_THRESHOLD,
        passivate_after: float | None = 60.0,
        node_kinds: NodeKinds | None = None,
        workflows: Iterable[CodeWorkflow] = (),
        artifact_threshold: int | None = DEFAULT_ARTIFACT_THRESHOLD,
        shared: bool = False,
        ownership_ttl_ms: int = DEFAULT_OWNERSHIP_TTL_MS,
    ) -> None:
        self.url = url
        self.clock: Clock = clock or SystemClock()
        self.tools = ToolRegistry(tools)
        #: Model, agent and http nodes (tether.agents.AgentKinds; tether.Runtime's default).
        self.node_kinds = node_kinds
        if node_kinds is not None:
            for builtin in node_kinds.tools():
                self.tools.add(builtin)
        self._rng = rng or random.Random()
        self._durability: Durability = durability
        self._snapshot_every = snapshot_every
        # An execution that only waits (decisions, events, timers at least this far away)
        # gives up its actor and stays on disk until something wakes it (I9).
        if passivate_after is not None and passivate_after < 0:
            raise ValueError("passivate_after must be >= 0 seconds (0 or None: never)")
        self._passivate_after_ms = int(passivate_after * 1000) if passivate_after else None
        if max_concurrency < 0:
            raise ValueError("max_concurrency must be >= 0 (0: no in-process workers)")
        self._transports = list(transports)
        #: What workers announce of tools this engine lacks (only workers can announce).
        self._announced = AnnouncedTools() if self._transports else None
        if max_concurrency == 0 and executor is None and not self._transports:
            raise ValueError(
                "max_concurrency=0 leaves no in-process workers: plug in a worker transport "
                "(transports=[ZmqFleet('tcp://...')]) for `tether worker` processes, or "
                "max_concurrency >= 1"
            )
        self._capacity = max_concurrency
        if executor is None and max_concurrency > 0:
            executor = InProcessExecutor(
                self.tools, self.clock, max_concurrency, secret_source(secrets)
            )
        self._executor = executor
        self._lease_ttl_ms = lease_ttl_ms
        # shared: one of several engines on one Postgres database (tether.runtime.ownership).
        self._shared_wanted = shared
        self._ownership_ttl_ms = ownership_ttl_ms
        self._shared: SharedEngine | None = None
        if shared:  # one id per process: a restarted engine is a new owner (fence + 1)
            engine_id = new_engine_id(self._rng, None if engine_id == "engine" else engine_id)
        self.engine_id = engine_id
        self._cron = cron
        self._given_store = store
        # Values longer than this (encoded) are kept as artifacts, the journal holding their
        # digest (I9); None: never.
        self._artifact_threshold = checked_threshold(artifact_threshold)
        self._registry = WorkflowRegistry()
        #: Queues of the workflows registered or loaded here (a queue is remote or local).
        self._queue_users = QueueUsers()
        #: Code-first workflows' bodies by where they live (a run resumed needs its body).
        self._bodies: dict[str, CodeWorkflow] = {}
        for body in workflows:
            self.register(body)
        self._stack: AsyncExitStack | None = None
        self._services: Services | None = None
        self._system: ActorSystem | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._revival: StorageRevival | None = None
        self._started_in_recovery: set[str] | None = None
        self._schedules: Schedules | None = None
        if gc_threshold is not None and gc_threshold < 1:
            raise ValueError("gc_threshold must be >= 1 (or None to leave the collector alone)")
        self._gc_threshold = gc_threshold
        self._activations: Activations | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        engine = self.engine_id if self._shared_wanted else None
        store = self._given_store or await open_store(self.url, self._durability, engine_id=engine)
        stack = AsyncExitStack()
        try:
            if self._given_store is None:  # a store passed in belongs to the caller
                stack.push_async_callback(store.close)
            self._tg = tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            stack.push_async_callback(self._resign)  # once the actors have stopped
            if self.node_kinds is not None:  # after the executor: no call is still using it
                stack.push_async_callback(self.node_kinds.aclose)
                start = getattr(self.node_kinds, "start", None)  # plug-ins written before it
                if start is not None:
                    await start()
            if self._executor is not None:
                stack.push_async_callback(self._executor.aclose)
            self._system = await stack.enter_async_context(
                ActorSystem(clock=self.clock, on_escalation=self._on_escalation, name="runtime")
            )
            if isinstance(self._executor, InProcessExecutor):
                # Before the actors stop: one running a tool in its own turn would hold the
                # shutdown until the tool returned.
                stack.callback(self._executor.stop_inline)
            store = spilling(store, self._artifact_threshold, self.clock)
            self._services = Services(
                store, self.tools, self.clock, self._rng, self._snapshot_every, self.node_kinds
            )
            self._services.spawn_execution = self._ensure_spawned
            tg.start_soon(self._services.views.run)  # the run views: off the turn
            if self._announced is not None:
                self._services.attach_announced(self._announced)
                self._announced.on_served = self._tools_served
            self._revival = StorageRevival(
                self.clock, self._ensure_spawned, self._services.mark_broken
            )
            self._services.queue_users = self._queue_users
            self._services.code_workflows = self._bodies
            self._services.children = RuntimeChildRuns(self, tg)
            self._services.passivate_after_ms = self._passivate_after_ms
            self._activations = Activations(
                self._services, self._system, self._system_ref, self._spawn_passive
            )
            self._shared = await open_shared(self, store)
            await start_scheduling(
                self._system, self._services, tg, self._deliver, self._fire_timer,
                executor=self._executor, capacity=self._capacity, lease_ttl_ms=self._lease_ttl_ms,
            )  # fmt: skip
            await self._recover()
            await join_local_pool(self._services)
            if self._cron:
                # After recovery: a catch-up fire must not start an execution recovery spawns.
                cron = await self._system.spawn(
                    lambda: CronActor(store, self.clock, self._start_scheduled, tg),
                    name=CRON_NAME,
                )
                self._schedules = Schedules(cron)
            for transport in self._transports:  # after recovery, as the local pool
                await transport.open(runtime_internals(self), stack)
            if self._shared is not None:
                tg.start_soon(self._shared.keeper.run)
                stack.callback(self._shared.keeper.halt)  # no claim while the actors stop
            if self._gc_threshold is not None:
                stack.callback(GcTuning.apply(self._gc_threshold).restore)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _resign(self) -> None:
        if self._shared is not None:
            await self._shared.keeper.close()

    @property
    def _svc(self) -> Services:
        if self._services is None:
            raise RuntimeError("use the Runtime inside 'async with Runtime(...) as rt'")
        return self._services

    @property
    def store(self) -> Store:
        return self._svc.store

    @property
    def _passive(self) -> Activations:
        if self._activations is None:
            raise RuntimeError("use the Runtime inside 'async with Runtime(...) as rt'")
        return self._activations

    # -- schedules --------------------------------------------------------------------------

    async def schedule(
        self,
        schedule_id: str,
        *,
        cron: str,
        workflow: Workflow | str | CodeWorkflow,
        input: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
        missed: str = "skip",
    ) -> ScheduleRow:
        """Start ``workflow`` at every fire of ``cron`` in ``timezone``, one execution per fire
        (id ``sched_<id>_<fire ms>``, so no fire ever starts twice). ``missed``: ``skip`` fires
        that came due while no engine ran, or ``run_once`` (the latest of them). Declaring the
        same schedule again changes nothing. Raises InvalidInput naming the bad field.

        Example::

            await rt.schedule("daily-report", cron="0 9 * * *", workflow=wf, input={})
        """
        wf, given = await self._prepare(workflow, input)  # in the registry for later fires
        return await self.schedules.create(schedule_id, cron, wf, given, timezone, missed)

    @property
    def schedules(self) -> Schedules:
        """List, pause, resume and delete schedules (see :class:`Schedules`)."""
        if self._schedules is None:
            raise RuntimeError(
                "no schedules here: use the Runtime inside 'async with', with cron=True"
            )
        return self._schedules

    def add_transport(self, transport: WorkerTransport) -> None:
        """Plug in one more worker transport, opened with those given to the constructor when
        the runtime starts (a server adds its HTTP workers' entrance this way, so their leases
        are adopted before the restart's adoption grace can run out). What the constructor
        decides from its transports it decides without this one: a transport whose workers
        announce tools, or the only way steps run with ``max_concurrency=0``, goes there.

        Example::

            rt.add_transport(entrance)
            async with rt: ...
            rt.remove_transport(entrance)
        """
        if self._stack is not None:
            raise RuntimeError("add_transport: the runtime is running; add it before it starts")
        self._transports.append(transport)

    def remove_transport(self, transport: WorkerTransport) -> None:
        """Forget a transport added with :meth:`add_transport` (it opens no more)."""
        if transport in self._transports:
            self._transports.remove(transport)

    def workers(self) -> list[dict[str, Any]]:
        """The workers the scheduler knows now: id, queues, free credit, leases held, and
        whether it is quiet (missed its heartbeats: it gets no new work until it speaks)."""
        return [
            {
                "worker_id": w.owner,
                "local": w.local,
                "queues": sorted(w.queues) if w.queues is not None else ["*"],
                "free_slots": w.credit.free,
                "leases": len(w.leases),
                "quiet": not w.local and w.link.quiet(),
            }
            for w in self._svc.ledger.workers.values()
        ]

    async def _start_scheduled(
        self, execution_id: str, workflow_id: str, version: str, input: dict[str, Any]
    ) -> None:
        await self.start(f"{workflow_id}@{version}", input, execution_id=execution_id)

    # -- executions -------------------------------------------------------------------------

    async def start(
        self,
        workflow: Workflow | str | CodeWorkflow,
        input: Mapping[str, Any] | None = None,
        *,
        execution_id: str | None = None,
    ) -> Run:
        """Start an execution; returns once its first turn is durable.

        Starting again with the same ``execution_id`` is a no-op returning the same run.
        """
        wf, given = await self._prepare(workflow, input)
        if execution_id is not None:
            check_given_id(execution_id)
            return await self._start_with_id(wf, given, execution_id)
        for _ in range(3):
            eid = new_execution_id(self.clock, self._rng)
            try:
                return await self._start_with_id(wf, given, eid, fresh=True)
            except SequenceConflict:
                continue  # the id exists already (a seeded rng and clock repeat themselves)
        raise ExecutionIdInUse(
            "the id generator keeps repeating existing execution ids; "
            "give each Runtime on a file its own rng seed"
        )

    async def _start_with_id(
        self, wf: Workflow, given: dict[str, Any], eid: str, fresh: bool = False
    ) -> Run:
        if eid in self._svc.broken:
            raise ExecutionBroken(eid, self._svc.broken[eid])
        try:
            if not fresh:  # a given id may name a passivated execution: wake it, not a second
                await self._passive.live_ref(eid)
            # No await between the look-up and the spawn: a concurrent start finds this actor.
            existing = self._system_ref(eid)
            ref = existing or await self._spawn(eid, fresh=fresh)
        except OwnedElsewhere:
            return Run(self, eid)  # another engine started it (the same cron fire, say)
        try:
            await ref.ask(StartExecution(wf, given), timeout=None)
        except BaseException:
            if existing is None:
                with contextlib.suppress(ActorStopped):
                    await ref.stop(drain=False)  # no half-started actor is left behind
            raise
        return Run(self, eid)

    async def run(
        self, workflow: Workflow | str | CodeWorkflow, input: Mapping[str, Any] | None = None
    ) -> Any:
        """Start and wait for the result."""
        return await (await self.start(workflow, input)).result()

    def handle(self, execution_id: str) -> Run:
        return Run(self, execution_id)

    # -- actors -----------------------------------------------------------------------------

    def _system_ref(self, execution_id: str) -> ActorRef | None:
        assert self._system is not None
        ref = self._system.get(execution_id)
        return ref if ref is not None and ref.is_alive else None

    async def _ask_execution(self, execution_id: str, message: object) -> tuple[bool, object]:
        if self._shared is not None:  # the run may be owned by another engine
            return await ask_or_forward(self._shared, self._passive, execution_id, message)
        return await self._passive.ask(execution_id, message)

    def _tools_served(self, execution_ids: list[str]) -> None:
        """Runs held for a tool that a worker has announced now: each plans again."""
        assert self._tg is not None
        for execution_id in execution_ids:
            self._tg.start_soon(self._fire_timer, execution_id, ToolServed())

    async def _fire_timer(self, execution_id: str, message: object) -> bool:
        """What the timer actor tells an execution; a passivated one is woken in a task of
        its own, so its wake-up does not hold up the timers due after it."""
        if await self._tell_execution(execution_id, message):
            return True
        assert self._tg is not None
        self._tg.start_soon(self._passive.wake, execution_id, message)
        return True

    async def _deliver(self, outcome: NodeOutcome) -> bool:
        """Hand a checked outcome to its execution actor; False when none is live to take it."""
        self._svc.outcome_arriving(outcome.execution_id, outcome.work_item_id)
        return await self._tell_execution(outcome.execution_id, outcome)

    async def _tell_execution(self, execution_id: str, message: object) -> bool:
        """Tell the live actor of an execution; False when there is none to take it."""
        ref = self._system_ref(execution_id)
        if ref is None:
            return False  # finished or cancelled meanwhile: the journal has settled it
        try:
            try:
                ref.tell_nowait(message)  # the common case, without a coroutine per message
            except MailboxFull:
                await ref.tell(message)  # backpressure: wait for room
        except ActorStopped:
            return False  # stopping: its journal has settled it
        return True
