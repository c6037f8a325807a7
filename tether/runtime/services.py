"""What execution actors share: storage, executor, clock, tools, workflow graphs, waiters.

One ``Services`` belongs to one ``Runtime``; it is passed to every actor it spawns, so there is
no process-global registry and two runtimes in one process never see each other's state.

Example (the runtime builds it)::

    services = Services(store, tools, clock, rng, snapshot_every=100)
    services.attach_scheduler(scheduler_ref, task_group)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import anyio
import anyio.abc
import msgspec

from tether.actors import ActorRef, ActorStopped, MailboxFull
from tether.clock import Clock
from tether.errors import WorkflowNotFound
from tether.ir.types import AgentKind, Node, PythonFnKind, ToolKind, Workflow, decode_workflow
from tether.logs import lifecycle_logger
from tether.persistence.contract import Store, Turn
from tether.runtime.announced_tools import AnnouncedTools, ToolAwaited
from tether.runtime.code_first.children import ChildRuns
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.code_first.graph import CodeGraph
from tether.runtime.counters import RuntimeCounters
from tether.runtime.graph import Graph
from tether.runtime.ledger import WorkerLedger
from tether.runtime.local_workers import LocalWorkers
from tether.runtime.node_kinds import CallBinder, NodeKinds
from tether.runtime.pool_items import PoolItems
from tether.runtime.projector import Projector
from tether.runtime.runnable import QueueUsers, check_queues
from tether.runtime.state import ExecutionState
from tether.runtime.tools import ArgumentBinder, ToolRegistry, UnknownTool
from tether.runtime.work import queue_of

lifecycle = lifecycle_logger("tether.execution")

_SETTLED_KEPT = 4096


async def _no_spawn(execution_id: str) -> object:
    raise RuntimeError(f"cannot start execution {execution_id}: the runtime is not running")


@dataclass
class _Waiters:
    event: asyncio.Event
    count: int = 0


class _NodeBinding(NamedTuple):
    node: Node
    tool_name: str
    #: None: a python_fn step run by remote workers only; they read the state themselves.
    bind: ArgumentBinder | CallBinder | None
    queue: str
    #: An agent node: its hand-outs' tool depends on the call (Services.work_spec).
    node_kinds_call: bool = False

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {} if self.bind is None else self.bind(data)


#: Node bindings kept (graphs have few nodes; a code-first body makes one per call).
_BINDERS_KEPT = 65_536


class Services:
    def __init__(
        self,
        store: Store,
        tools: ToolRegistry,
        clock: Clock,
        rng: random.Random,
        snapshot_every: int,
        node_kinds: NodeKinds | None = None,
    ) -> None:
        self.store = store
        #: Model, agent, http ... nodes' calls (None: this runtime runs none).
        self.node_kinds = node_kinds
        # The workflow of each loaded node (by identity), for the plug-in's bindings.
        self._workflow_of: dict[int, Workflow] = {}
        #: The runtime's SchedulerActor (set once it is spawned, before any execution).
        self.scheduler: ActorRef | None = None
        #: The runtime's TimerActor (set with the scheduler).
        self.timers: ActorRef | None = None
        #: Starts the actor of an execution from its journal (a continued segment's).
        self.spawn_execution: Callable[[str], Awaitable[object]] = _no_spawn
        #: The in-process pool (None: no in-process workers).
        self.local: LocalWorkers | None = None
        #: Every worker's credit, shared with the scheduler (see tether.runtime.ledger).
        self.ledger = WorkerLedger()
        self.lease_ttl_ms = 5_000
        self._task_group: anyio.abc.TaskGroup | None = None
        self.tools = tools
        self.clock = clock
        self.rng = rng
        self.snapshot_every = snapshot_every
        #: An execution that only waits, with no timer nearer than this, gives up its actor
        #: (see tether.runtime.passivation); None: never.
        self.passivate_after_ms: int | None = None
        self._graphs: dict[tuple[str, str], Graph] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[Graph]] = {}
        # Per live execution, its pool items without a row: kept here, not in the actor, so
        # a supervisor's restart of the actor does not lose them (see pool_items).
        self._pool_items: dict[str, PoolItems] = {}
        self._waiters: dict[str, _Waiters] = {}
        # Recently finished states, so result() after a live run needs no replay. Bounded.
        self._settled: OrderedDict[str, ExecutionState] = OrderedDict()
        self.broken: dict[str, str] = {}
        self._binders: dict[int, _NodeBinding] = {}
        #: Queues holding python_fn steps this engine has no function for: the in-process
        #: pool never takes them (shared with its ledger entry; grows as workflows load).
        self.remote_queues: set[str] = set()
        #: Which loaded workflow uses each queue remotely and locally (refusing a clash).
        self.queue_users = QueueUsers()
        #: Code-first workflows' bodies by where they live (``module:qualname``).
        self.code_workflows: dict[str, CodeWorkflow] = {}
        #: Starts code-first children and tells parents of their end (set by the runtime).
        self.children: ChildRuns | None = None
        #: What nothing else keeps, for metrics (see tether.runtime.counters).
        self.counters = RuntimeCounters()
        #: Keeps the run views (cross-run lists and counts) in step, off the turn: a turn
        #: that changed a status nudges it once committed (its task runs in the Runtime).
        self.views = Projector(store, clock)
        #: Tools workers announced, and runs held for tools none has (None: this runtime has
        #: no worker transport, so a tool it lacks is refused: tether.runtime.announced_tools).
        self.announced: AnnouncedTools | None = None

    def append(self, turn: Turn) -> Awaitable[object]:
        """Append ``turn`` to the journal; one that changes a status is written inside the
        projector's ``writing()`` (tether.runtime.projector), so the run views follow it. A
        plain function handing back the store's append on the common turn: no coroutine
        frame of its own on the step path."""
        if turn.index is None:
            return self.store.append(turn)
        return self._append_status_turn(turn)

    async def _append_status_turn(self, turn: Turn) -> None:
        with self.views.writing():
            await self.store.append(turn)

    def attach_announced(self, announced: AnnouncedTools) -> None:
        """Bind tools the engine lacks by what workers announce (see announced_tools)."""
        self.announced = announced
        announced.on_change = self._binders.clear  # a tool's parameters changed: bind anew

    def attach_scheduler(self, scheduler: ActorRef, task_group: anyio.abc.TaskGroup) -> None:
        self.scheduler = scheduler
        self._task_group = task_group

    def tell_scheduler(self, message: object) -> None:
        """Send without waiting; a full mailbox makes a task wait for room (never dropped)."""
        assert self.scheduler is not None
        self._tell(self.scheduler, message)

    def tell_timers(self, message: object) -> None:
        assert self.timers is not None
        self._tell(self.timers, message)

    def _tell(self, ref: ActorRef, message: object) -> None:
        assert self._task_group is not None
        try:
            ref.tell_nowait(message)
        except MailboxFull:
            self._task_group.start_soon(self._tell_later, ref, message)
        except ActorStopped:
            pass  # the runtime is shutting down; the journal holds what matters

    @staticmethod
    async def _tell_later(ref: ActorRef, message: object) -> None:
        with contextlib.suppress(ActorStopped):
            await ref.tell(message)

    def add_workflow(self, wf: Workflow) -> Graph:
        # Checked on every load, not only at registration: a version stored before another
        # workflow took its queue the other way must not hand that one's steps to remote
        # workers (or keep them from the pool) when it is loaded later (I14).
        remote_tools = self.announced is not None
        check_queues(wf, self.tools, self.queue_users, remote_tools=remote_tools)
        graph = Graph(wf) if wf.code is None else self._code_graph(wf)
        self.queue_users.add(wf, self.tools, remote_tools=remote_tools)
        for node in graph.nodes.values():
            self._workflow_of[id(node)] = wf
        for node in wf.nodes.values():
            if isinstance(node.kind, PythonFnKind):
                binding = self._binder(node)
                if binding.bind is None:
                    self.remote_queues.add(binding.queue)
            elif isinstance(node.kind, ToolKind) and self.announced is not None:
                try:
                    self.tools.for_node(node)
                except UnknownTool:  # served by workers only: the pool must not take it
                    self.remote_queues.add(queue_of(node))
        self._graphs[(wf.workflow_id, wf.version)] = graph
        return graph

    def _code_graph(self, wf: Workflow) -> Graph:
        assert wf.code is not None
        body = self.code_workflows.get(wf.code)
        if body is None:
            raise WorkflowNotFound(
                f"workflow {wf.ref} is code-first ({wf.code}) and this runtime was not given "
                "it: Runtime(..., workflows=[...]) or `tether dev --modules`"
            )
        return CodeGraph(wf, body, self.tools)

    async def graph(self, workflow_id: str, version: str) -> Graph:
        """The compiled graph of a workflow version, loading its IR from the registry."""
        key = (workflow_id, version)
        found = self._graphs.get(key)
        if found is not None:
            return found
        # One load per version however many ask at once: on restart every recovering
        # execution of a workflow asks before the first load finished.
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load_graph(key))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load_graph(self, key: tuple[str, str]) -> Graph:
        row = await self.store.get_workflow(*key)
        if row is None:
            raise WorkflowNotFound(f"workflow {key[0]}@{key[1]} is not in the registry")
        return self.add_workflow(decode_workflow(row.ir))

    async def load_unfinished_workflows(self) -> None:
        """Load the graph of every workflow an unfinished execution runs, so
        ``remote_queues`` names their remote-only queues. After a restart the recovered
        executions load theirs in their own tasks, maybe only after the in-process pool joined
        and was granted (and failed) their remote steps; a workflow that does not load is left
        to its executions, which report it."""
        rows = await self.store.unfinished_executions()
        for key in dict.fromkeys((row.workflow_id, row.workflow_version) for row in rows):
            with contextlib.suppress(WorkflowNotFound, UnknownTool, msgspec.DecodeError):
                await self.graph(*key)

    def pool_items_of(self, execution_id: str) -> PoolItems:
        found = self._pool_items.get(execution_id)
        if found is None:
            found = self._pool_items[execution_id] = PoolItems()
        return found

    def runs_rowless(self, execution_id: str, work_item_id: str) -> bool:
        """Is this a pool item without a row whose outcome is still to come: queued, running
        or being reported on this engine's pool, or waiting in its actor's mailbox? (Not
        lost: recovery leaves it alone, and checks do not expect its row.)"""
        found = self._pool_items.get(execution_id)
        return (
            found is not None
            and found.has(work_item_id)
            and (
                found.awaited(work_item_id)
                or (self.local is not None and self.local.holds(work_item_id))
            )
        )

    def interrupt_inline(self, execution_id: str) -> None:
        """Stop the tool an execution actor runs in its own turn, so that a cancel reaches
        it now rather than when the tool returns. No durable effect: the item stays in flight
        until the cancel's turn settles it (or recovery hands it out again)."""
        found = self._pool_items.get(execution_id)
        if found is not None and found.inline is not None and self.local is not None:
            self.local.cancel(found.inline)

    def forget_pool_items(self, execution_id: str) -> None:
        self._pool_items.pop(execution_id, None)

    def outcome_arriving(self, execution_id: str, work_item_id: str) -> None:
        """An outcome is about to be put in its execution actor's mailbox."""
        found = self._pool_items.get(execution_id)
        if found is not None:
            found.arriving(work_item_id)

    def bind(self, node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._binder(node)(data)

    def tool_name(self, node: Node) -> str:
        return self._binder(node).tool_name

    def queue_of(self, node: Node) -> str:
        """The queue of a work node's items (see :func:`tether.runtime.work.queue_of`); a
        tool this process does not have goes by its node's label."""
        try:
            return self._binder(node).queue
        except UnknownTool:
            return queue_of(node)

    def hand_out_of(self, node: Node, args: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """The queue, tool and input of a hand-out of ``node`` with ``args``: ``queue_of`` and
        ``work_spec`` in one lookup of the node's binding (its arguments bound already, the
        binding is known: raises like ``work_spec`` if not)."""
        binding = self._binder(node)
        if binding.node_kinds_call and args.get("call") == "tool":
            return (binding.queue, *self.work_spec(node, args))
        return binding.queue, binding.tool_name, args

    def work_spec(self, node: Node, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The tool a hand-out of ``node`` with ``args`` runs, and its input: an agent's
        tool calls run the tool the model named, its model calls the plug-in's tool."""
        binding = self._binder(node)
        if binding.node_kinds_call and args.get("call") == "tool":
            assert self.node_kinds is not None
            call = {
                "id": args.get("call_id"),
                "name": args.get("tool"),
                "arguments": args.get("arguments"),
            }
            return self.node_kinds.tool_call(self._workflow_of[id(node)], node, call)
        return binding.tool_name, args

    # -- an agent's calls, for the planner (tether.runtime.agent_plan.AgentCalls) -----------

    def model_call(
        self, node: Node, messages: tuple[Any, ...] | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        assert self.node_kinds is not None
        wf = self._workflow_of[id(node)]
        return self.node_kinds.model_call(wf, node, messages, data, self.tools)

    def refusal(self, node: Node, call: Mapping[str, Any]) -> str | None:
        assert self.node_kinds is not None
        return self.node_kinds.refusal(self._workflow_of[id(node)], node, call)

    def needs_approval(self, node: Node, call: Mapping[str, Any]) -> bool:
        assert self.node_kinds is not None
        wf = self._workflow_of[id(node)]
        return self.node_kinds.needs_approval(wf, node, call, self.tools)

    def _binder(self, node: Node) -> _NodeBinding:
        # Keyed by identity: graphs keep their nodes alive, and the node is checked on hit.
        hit = self._binders.get(id(node))
        if hit is not None and hit.node is node:
            return hit
        if len(self._binders) > _BINDERS_KEPT:  # code-first calls make nodes without end
            self._binders.clear()
        kind = node.kind
        if self.node_kinds is not None and self.node_kinds.handles(node):
            wf = self._workflow_of[id(node)]
            name, bind = self.node_kinds.binding(wf, node, self.tools)
            agent = isinstance(kind, AgentKind)
            binding = _NodeBinding(node, name, bind, queue_of(node), agent)
            self._binders[id(node)] = binding
            return binding
        try:
            tool = self.tools.for_node(node)
        except UnknownTool:
            if isinstance(kind, ToolKind) and self.announced is not None:
                # Served by workers only: bound by what they announced, or held until one does.
                sig = self.announced.signature(kind.tool_ref)
                if sig is None:
                    raise ToolAwaited(kind.tool_ref, queue_of(node)) from None
                binding = _NodeBinding(node, sig.name, ArgumentBinder(sig, node), queue_of(node))
                self._binders[id(node)] = binding
                return binding
            if not isinstance(kind, PythonFnKind):
                raise
            name = f"{kind.module}.{kind.function}"
            binding = _NodeBinding(node, name, None, queue_of(node, remote=True))
        else:
            binding = _NodeBinding(node, tool.name, ArgumentBinder(tool, node), queue_of(node))
        self._binders[id(node)] = binding
        return binding

    # -- waiting for executions to finish -------------------------------------------------

    def acquire_waiter(self, execution_id: str) -> asyncio.Event:
        """The event set when the execution settles; pair with ``release_waiter``."""
        entry = self._waiters.get(execution_id)
        if entry is None:  # asyncio's own: anyio.Event looks the backend up per run waited on
            entry = self._waiters[execution_id] = _Waiters(asyncio.Event())
        entry.count += 1
        return entry.event

    def release_waiter(self, execution_id: str, event: asyncio.Event) -> None:
        # Counted, so a waiter that gives up (timeout, unknown id) leaves nothing behind
        # while others waiting on the same execution keep their event.
        entry = self._waiters.get(execution_id)
        if entry is not None and entry.event is event:
            entry.count -= 1
            if entry.count <= 0:
                del self._waiters[execution_id]

    def settle(self, execution_id: str, state: ExecutionState) -> None:
        """Called after the terminal turn committed: wakes everyone awaiting the result."""
        self._settled[execution_id] = state
        while len(self._settled) > _SETTLED_KEPT:
            self._settled.popitem(last=False)
        self._wake(execution_id)

    def settled_state(self, execution_id: str) -> ExecutionState | None:
        """The final state of an execution that finished in this runtime lately, if kept."""
        return self._settled.get(execution_id)

    def mark_broken(self, execution_id: str, problem: str) -> None:
        lifecycle.event(
            "execution_broken", logging.ERROR, execution_id=execution_id, problem=problem
        )
        self.broken[execution_id] = problem
        self._wake(execution_id)

    def wake_waiters_where(self, predicate: Callable[[str], bool]) -> None:
        """Wake the waiters of the executions ``predicate`` picks (they look again): with
        several engines, a run owned by another one settles there, not here."""
        for execution_id in [e for e in self._waiters if predicate(e)]:
            self._wake(execution_id)

    def _wake(self, execution_id: str) -> None:
        entry = self._waiters.pop(execution_id, None)
        if entry is not None:
            entry.event.set()
