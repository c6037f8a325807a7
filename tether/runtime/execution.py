"""ExecutionActor: one supervised actor per live execution, journal before act (I1).

Each message (start, node outcome, cancel) becomes a record; the actor plans the rest of the
turn from the resulting state and commits the turn in one transaction (I4) with the work items
it schedules and the fenced settle of the outcome it records (the in-process pool's items get
a row only when their outcome needs one: ``pool_items``); only then does it act: tells the
scheduler about new work and settled leases, answers waiters. An outcome whose fence the store
finds stale is refused whole (I5). Its state is the fold of its journal (I2), so a restart —
after a crash, or by its supervisor after a failure — rebuilds it by replay and re-derives the
effects (I3): work items are keyed by execution, node and dispatch.

Example (what the runtime does)::

    ref = await system.spawn(lambda: ExecutionActor(services, execution_id), name=execution_id)
    await ref.ask(StartExecution(workflow, {"n": 0}))
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from tether.actors import Actor
from tether.clock import now_ms
from tether.errors import ExecutionBroken, ExecutionNotRunning
from tether.ir.types import Workflow
from tether.persistence.contract import (
    LoadedExecution,
    Settle,
    StaleFence,
    UnknownWorkItem,
    WorkItemRow,
)
from tether.persistence.ownership import OwnershipLost
from tether.runtime.announced_tools import ToolAwaited, ToolServed
from tether.runtime.code_first.calls import NondeterminismError
from tether.runtime.code_first.children import children_asked, parent_of
from tether.runtime.code_first.plan import CodeSlot
from tether.runtime.execution_lifecycle import ExecutionLifecycle, lifecycle
from tether.runtime.executor import NodeOutcome, WorkItem
from tether.runtime.graph import Graph
from tether.runtime.hand_out import RunInline, WorkHandOut
from tether.runtime.outcome_records import outcome_record
from tether.runtime.passivation import seal
from tether.runtime.planner import PlanContext, plan_turn
from tether.runtime.records import (
    ContinueRequested,
    ExecutionCancelled,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    NodeWaiting,
    Record,
    SegmentBoundary,
    TimerFired,
)
from tether.runtime.scheduler_messages import Settled, WorkReady
from tether.runtime.segments import open_segment
from tether.runtime.services import Services
from tether.runtime.signals import (
    Approve,
    ContinueAsNew,
    SendEvent,
    approval_record,
    event_record,
)
from tether.runtime.state import ExecutionState
from tether.runtime.step_plan import plan_step
from tether.runtime.timers import ArmTimer, FireTimer
from tether.runtime.turn_work import (
    created_item,
    created_items,
    make_turn,
    reissued_items,
    turn_settles,
)


class StartExecution(msgspec.Struct, frozen=True):
    workflow: Workflow
    input: dict[str, Any]


class CancelExecution(msgspec.Struct, frozen=True):
    reason: str = ""


class GetState(msgspec.Struct, frozen=True):
    pass


#: Messages always sent by ask: a refusal is raised to the asker.
_ASKED = (StartExecution, CancelExecution, SendEvent, Approve, ContinueAsNew)


#: What ``_closed`` finds in the common turn (shared, never changed).
_NONE_CLOSED: list[str] = []


def _closed(settles: list[Settle]) -> list[str]:
    """The items a turn settled as cancelled (no fence): their work is stopped. A loop, not a
    comprehension: it runs every step, and almost always finds none."""
    closed = _NONE_CLOSED
    for settle in settles:
        if settle.fence is None:
            if closed is _NONE_CLOSED:
                closed = []
            closed.append(settle.work_item_id)
    return closed


class ExecutionActor(ExecutionLifecycle, Actor):
    """Drives one execution. Its only durable effect is appending turns to the journal.

    Its start, recovery and retirement are in :mod:`tether.runtime.execution_lifecycle`."""

    def __init__(
        self,
        services: Services,
        execution_id: str,
        fresh: bool = False,
        loaded: LoadedExecution | None = None,
    ) -> None:
        self._s = services
        self.execution_id = execution_id
        # A just-generated id has no journal yet: skip the read, unless this is a restart.
        self._fresh = fresh
        # Read by recovery with the other unfinished executions (given to a first instance
        # only: a restarted one reads its journal again).
        self._loaded = loaded
        self.state = ExecutionState()
        self.graph: Graph | None = None
        self._pool = services.pool_items_of(execution_id)  # pool items without a row
        #: The seq of the last turn that passivated this execution (see passivation).
        self._sealed_seq = -1
        #: A code-first body's driver between turns (unused by graph workflows).
        self._code = CodeSlot()
        self._out = WorkHandOut(services, self._pool)
        #: Told by the planner of a node held for a tool no worker announced yet.
        self._on_held = self._held if services.announced is not None else None

    async def _reissue(self) -> None:
        """A pending row for each hand-out in flight that has none: the attempt is not spent
        (the engine stopped, not the work) and the scheduler grants it like any other."""
        # Part of recovery, but kept in this module: it looks up ``reissued_items`` here,
        # where the crash-point tests plant their faults (``execution.reissued_items``).
        assert self.graph is not None
        at = now_ms(self._s.clock)
        rows = []
        for row in reissued_items(self._s, self.graph, self.execution_id, self.state, at):
            wid = row.work_item_id
            if self._s.runs_rowless(self.execution_id, wid):
                continue  # this actor was restarted; the pool's outcome will come here
            self._pool.drop(wid)  # its outcome will never come: it gets a row and runs again
            rows.append(row)
        if rows and await self._s.store.reissue(rows):
            for queue, not_before in dict.fromkeys((r.queue, r.not_before_ms) for r in rows):
                self._s.tell_scheduler(WorkReady(queue, not_before))

    async def on_receive(self, message: object) -> object:
        try:
            return await self._receive(message)
        except NondeterminismError as exc:  # the body's code changed under its journal (I8)
            self._s.mark_broken(self.execution_id, str(exc))
            await self._retire()
            if isinstance(message, _ASKED):
                raise ExecutionBroken(self.execution_id, str(exc)) from None
            return None
        except OwnershipLost as exc:  # another engine took it over (this one's expired)
            self._let_go(exc)
            await self._retire()
            if isinstance(message, _ASKED):
                raise
            return None
        finally:
            if self._sealed_seq == self.state.last_seq:  # passivated by its last turn
                await self._sleep_if_idle()

    async def _receive(self, message: object) -> object:
        if isinstance(message, NodeOutcome):
            await self._on_outcome(message)
            return None
        if isinstance(message, RunInline):
            await self._on_inline(message.item)
            return None
        if isinstance(message, StartExecution):
            return await self._on_start_execution(message)
        if isinstance(message, CancelExecution):
            return await self._on_cancel(message)
        if isinstance(message, FireTimer):
            await self._on_timer(message)
            return None
        if isinstance(message, SendEvent | Approve | ContinueAsNew):
            return await self._on_signal(message)
        if isinstance(message, GetState):
            return self.state
        if isinstance(message, ToolServed):
            if self.graph is not None and self.state.status == "running":
                await self._turn(None)  # what was held may be handed out now
            return None
        raise TypeError(f"ExecutionActor got an unknown message {type(message).__name__}")

    async def _on_outcome(self, out: NodeOutcome) -> None:
        self._pool.taken(out.work_item_id)
        run = self.state.nodes.get(out.node_id)
        if (
            self.graph is None
            or self.state.status != "running"
            or run is None
            or run.status != "scheduled"
            or run.dispatch != out.dispatch
        ):
            # Late or duplicate: the journal already settled this hand-out.
            self._answer(out, False, f"work item {out.work_item_id} is already settled")
            return
        record, settle = outcome_record(self.graph, out, now_ms(self._s.clock))
        try:
            await self._turn(record, settle)
        except (StaleFence, UnknownWorkItem) as exc:
            self._s.counters.reports_refused += 1  # for metrics: nothing else keeps it
            self._answer(out, False, str(exc))  # the store refused the whole turn (I5)
            return
        if isinstance(record, NodeFailed):
            lifecycle.event(
                "node_failed", logging.WARNING, execution_id=self.execution_id,
                node_id=out.node_id, attempt=out.attempt, worker_id=out.worker_id,
                error_type=record.error_type, error=record.error, retryable=record.retryable,
                traceback=record.traceback or None,  # where it raised, bounded, for the log too
            )  # fmt: skip
        parked = record.not_before_ms if isinstance(record, NodeParked) else None
        self._answer(out, True, parked_until_ms=parked)

    async def _on_inline(self, item: WorkItem) -> None:
        """Run a claimed item, then the one its outcome's turn claimed, and so on, in this
        one message while nothing else waits in the mailbox: a chain's step then costs no
        message to itself (a message that does arrive is served before the next step)."""
        out = self._out
        next_item: WorkItem | None = item
        out.chaining = True
        try:
            while next_item is not None:
                out.next_inline = None
                await self._run_inline(next_item)
                next_item = out.next_inline
        finally:
            out.chaining = False
            left, out.next_inline = out.next_inline, None
            if left is not None:  # a failure after the hand-out: it runs by message instead
                out.queue_inline(left, self.context)

    async def _run_inline(self, item: WorkItem) -> None:
        local = self._s.local
        assert local is not None
        run = self.state.nodes.get(item.node_id)
        try:
            if run is None or run.status != "scheduled" or run.dispatch != item.dispatch:
                local.cancel(item.work_item_id)  # settled meanwhile: frees the claim and slot
                return
            if self._out.task is None:
                self._out.task = asyncio.current_task()
            outcome = await local.run_inline(item, self._out.task)
        finally:  # ended, however: a cancel has nothing left to interrupt
            if self._pool.inline == item.work_item_id:
                self._pool.inline = None
        if outcome is not None:
            await self._on_outcome(outcome)

    def _answer(
        self, out: NodeOutcome, accepted: bool, reason: str = "", parked_until_ms: int | None = None
    ) -> None:
        # A parked item waits in the scheduler's due list; a remote worker waits for the Ack.
        if out.reply or parked_until_ms is not None:
            queue = ""
            if self.graph is not None and out.node_id in self.graph.nodes:
                queue = self._s.queue_of(self.graph.node(out.node_id))
            self._s.tell_scheduler(
                Settled(out.work_item_id, out.fence, accepted, reason, parked_until_ms, queue)
            )

    async def _on_timer(self, msg: FireTimer) -> None:
        wait = self.state.waits.get(msg.node_id)
        if self.state.status != "running" or wait is None or wait.dispatch != msg.dispatch:
            return  # the wait is over (an event won, or the run ended): nothing to fire
        if wait.fired:
            return
        now = now_ms(self._s.clock)
        if wait.fire_at_ms is not None and wait.fire_at_ms > now:
            self._arm(msg.node_id, wait.dispatch, wait.fire_at_ms)  # woke early: sleep on
            return
        await self._turn(TimerFired(at_ms=now, node_id=msg.node_id, dispatch=msg.dispatch))

    async def _on_signal(self, msg: SendEvent | Approve | ContinueAsNew) -> ExecutionState | None:
        """Journal an accepted event or decision; raise (changing nothing) to refuse it."""
        if self.execution_id in self._s.broken:
            raise ExecutionBroken(self.execution_id, self._s.broken[self.execution_id])
        if self.graph is None or self.state.status != "running":
            raise ExecutionNotRunning(self.execution_id, self.state.status)
        now = now_ms(self._s.clock)
        record: Record | None
        if isinstance(msg, Approve):
            record = approval_record(self.state, self.graph, msg, now)
        elif isinstance(msg, ContinueAsNew):
            record = ContinueRequested(at_ms=now, reason=msg.reason)
        else:
            record = event_record(self.state, self.graph, msg, now)
            if record is None:
                return None  # an event id already received: applied once
        await self._turn(record)
        return self.state

    async def _on_cancel(self, msg: CancelExecution) -> bool:
        if self.state.status != "running":
            return False
        await self._turn(ExecutionCancelled(at_ms=now_ms(self._s.clock), reason=msg.reason))
        return True

    async def _turn(self, incoming: Record | None, settle: Settle | None = None) -> None:
        """Plan, commit, then act. Nothing is acted on unless its turn committed."""
        assert self.graph is not None
        before = self.state
        now = now_ms(self._s.clock)
        step = plan_step(before, self.graph, incoming, now, self._s.bind)
        if step is not None:  # a common turn: a start, a step or a last step (step_plan)
            after, records, rows = step
        else:
            agents = self._s if self._s.node_kinds is not None else None
            code = self._code if self.graph.is_code else None
            ctx = PlanContext(now, self._s.rng, self._s.bind, agents, code, self._on_held)
            try:
                after, records, rows = plan_turn(before, self.graph, incoming, ctx)
            except BaseException:
                self._code.drop()  # it ran ahead of a state that is not committed
                raise
            if not records:
                return
        items: list[WorkItemRow] = []
        try:
            if step is not None:  # what created_items and turn_settles give for its shapes
                last = records[-1]
                if isinstance(last, NodeScheduled):
                    items = [created_item(self._s, self.graph, self.execution_id, last, now)]
                settles = [settle] if settle is not None else []
            else:
                items = created_items(self._s, self.graph, self.execution_id, after, records, now)
                settles = turn_settles(
                    self.execution_id, before, after, records, incoming, settle, now
                )
            boundary = records[-1] if isinstance(records[-1], SegmentBoundary) else None
            if boundary is not None:
                await open_segment(self._s, self.graph, self.execution_id, after, boundary)
            items_to_write, settles_to_write = self._pool.for_turn(items, settles)
            turn = make_turn(
                self._s, self.execution_id, before, after, rows, items_to_write,
                settles_to_write,
            )  # fmt: skip
            if after.waits and self._s.passivate_after_ms and not self._held_here():
                turn = seal(turn, after, now, self._s.passivate_after_ms)  # waits only
            await self._s.append(turn)
        except BaseException:
            self._code.drop()
            for item in items:  # never created: the credit taken for it is free again
                if item.lease_owner is not None:
                    self._out.give_back(item.lease_owner)
            raise
        self.state = after
        if turn.passive is not None:
            self._sealed_seq = after.last_seq
        self._pool.committed(items, settles)
        if items:
            self._out.hand_out(items, self.context)
        if after.waits:  # a wait the turn began is live: its timer (none else needs one)
            for record in records:
                if isinstance(record, NodeWaiting) and record.fire_at_ms is not None:
                    self._arm(record.node_id, record.dispatch, record.fire_at_ms)
        if self.graph.is_code and self._s.children is not None:
            for spec in children_asked(records):  # durable now: the child may start
                self._s.children.start(spec)
        closed = _closed(settles) if settles else _NONE_CLOSED
        if closed:
            why = f"execution {after.status}" if after.is_terminal else "superseded"
            self._out.close_items(closed, why)
        on_turn = self._s.counters.on_turn  # metrics, when asked for: one check otherwise
        if on_turn is not None:
            on_turn(records, items, len(closed))
        if after.is_terminal:
            lifecycle.event(
                "execution_ended", execution_id=self.execution_id, status=after.status,
                error=after.error,
            )  # fmt: skip
            self._s.settle(self.execution_id, after)
            # A child that continued as new has not ended: its last segment tells the parent.
            if boundary is None and parent_of(after.root_execution_id) and self._s.children:
                self._s.children.ended(after.root_execution_id, after)
            if boundary is not None:
                await self._s.spawn_execution(boundary.next_execution_id)
            await self._retire()

    def _held(self, node_id: str, awaited: ToolAwaited) -> None:
        announced = self._s.announced
        assert announced is not None
        announced.hold(self.execution_id, node_id, awaited.tool, awaited.queue)

    def _held_here(self) -> bool:
        # A held run stays live: a passivated one would not hear a worker announce its tool.
        announced = self._s.announced
        return announced is not None and announced.holding(self.execution_id)

    def _arm(self, node_id: str, dispatch: int, at_ms: int) -> None:
        self._s.tell_timers(ArmTimer(self.execution_id, node_id, dispatch, at_ms))
