"""How an execution actor begins and ends: its first start, its recovery from the journal
(after a crash, a restart by its supervisor, or a wake from passivation, I3), and its
retirement, sleep, or release to the engine that took it over.

A mixin of :class:`~tether.runtime.execution.ExecutionActor`, kept apart so the actor's module
holds what runs on every step (the turn, outcomes, inline runs) and this code, which runs a
few times in an execution's life, does not crowd it.

Example (what the runtime does)::

    ref = await system.spawn(lambda: ExecutionActor(services, execution_id), name=execution_id)
    await ref.ask(StartExecution(workflow, {"n": 0}))   # ExecutionLifecycle._on_start_execution
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tether.actors import ActorContext
from tether.clock import now_ms
from tether.errors import ExecutionBroken, ExecutionIdInUse, WorkflowNotFound
from tether.ir.errors import WorkflowInvalid
from tether.logs import lifecycle_logger
from tether.persistence.contract import (
    TERMINAL_STATUSES,
    JournalCorruption,
    LoadedExecution,
    Settle,
)
from tether.persistence.ownership import OwnershipLost
from tether.runtime.code_first.calls import NondeterminismError
from tether.runtime.code_first.children import children_awaited
from tether.runtime.code_first.plan import CodeSlot
from tether.runtime.graph import Graph
from tether.runtime.passivation import may_sleep
from tether.runtime.records import (
    ExecutionCancelled,
    ExecutionStarted,
    MalformedRecord,
    Record,
    SegmentBoundary,
    UnknownRecordType,
    decode_rows,
)
from tether.runtime.services import Services
from tether.runtime.snapshots import load_state
from tether.runtime.state import ExecutionState
from tether.runtime.tools import UnknownTool

if TYPE_CHECKING:
    from tether.runtime.execution import StartExecution

BROKEN = (JournalCorruption, UnknownRecordType, MalformedRecord)
#: What a recovering execution cannot fix by restarting: report it at once, keep the journal.
_UNRECOVERABLE = (WorkflowNotFound, UnknownTool, WorkflowInvalid, NondeterminismError)
# The execution actor's own logger: its events keep the name they are filtered by.
lifecycle = lifecycle_logger("tether.execution")


class ExecutionLifecycle:
    """Start, recovery and retirement of an ExecutionActor, which provides what is below."""

    context: ActorContext
    execution_id: str
    state: ExecutionState
    graph: Graph | None
    _s: Services
    _fresh: bool
    _loaded: LoadedExecution | None
    _sealed_seq: int
    _code: CodeSlot

    async def _turn(self, incoming: Record | None, settle: Settle | None = None) -> None:
        raise NotImplementedError

    async def _reissue(self) -> None:
        raise NotImplementedError

    def _arm(self, node_id: str, dispatch: int, at_ms: int) -> None:
        raise NotImplementedError

    async def on_start(self) -> None:
        if self._fresh and self.context.restart_count == 0:
            return
        try:
            await self._recover()
        except BROKEN as exc:
            self._s.mark_broken(self.execution_id, str(exc))
            await self._retire()
        except _UNRECOVERABLE as exc:
            self._s.mark_broken(self.execution_id, f"cannot resume in this runtime: {exc}")
            await self._retire()
        except OwnershipLost as exc:  # another engine took it over: it acts for it now
            self._let_go(exc)
            await self._retire()

    async def _recover(self) -> None:
        loaded, self._loaded = self._loaded, None
        self.state, self.graph = await load_state(self._s, self.execution_id, loaded)
        if loaded is not None and loaded.row.passivated:  # woken: it may sleep again
            self._sealed_seq = loaded.row.last_seq
        if self.graph is None or self.state.status == "new":
            return
        if self.state.previous_segment is not None and not await self._handed_over():
            return
        if self.state.is_terminal:
            self._s.settle(self.execution_id, self.state)
            await self._retire()
            return
        lifecycle.event(
            "execution_resumed", execution_id=self.execution_id,
            workflow=f"{self.state.workflow_id}@{self.state.workflow_version}",
            last_seq=self.state.last_seq, in_flight=self.state.running,
        )  # fmt: skip
        # Work handed out before the crash is in the work-item table, where the scheduler
        # finds it, once the pool's items (which had no row) are written; timers are armed
        # again from the waits; a turn re-derives only what follows from the state and was
        # not journaled.
        await self._reissue()
        for node_id, wait in self.state.waits.items():
            if wait.fire_at_ms is not None and not wait.fired:
                self._arm(node_id, wait.dispatch, wait.fire_at_ms)
        if self.graph.is_code and self._s.children is not None:
            for spec in children_awaited(self.state):  # started? ended while we were down?
                self._s.children.ensure(spec)
        await self._turn(None)

    async def _handed_over(self) -> bool:
        """Has the previous segment ended with a boundary naming this one? While it still runs
        (a roll cut by a crash), this segment waits, stopped, until that boundary starts it;
        if it ended otherwise, this one was orphaned and is cancelled."""
        prev = self.state.previous_segment
        assert prev is not None
        row = await self._s.store.get_execution(prev)
        if row is not None and row.status not in TERMINAL_STATUSES:
            await self._retire()  # still running: its boundary may yet start this segment
            return False
        why = f"orphaned: segment {prev} ended {row.status if row else 'missing'}"
        if row is not None and row.status == "continued":
            [last] = decode_rows(await self._s.store.read(prev, row.last_seq))
            assert isinstance(last.record, SegmentBoundary)
            if last.record.next_execution_id == self.execution_id:
                return True
            why = f"orphaned: segment {prev} continued as {last.record.next_execution_id}"
        if self.state.status == "running":
            await self._turn(ExecutionCancelled(at_ms=now_ms(self._s.clock), reason=why))
        return False

    async def _on_start_execution(self, msg: StartExecution) -> ExecutionState:
        if self.execution_id in self._s.broken:
            raise ExecutionBroken(self.execution_id, self._s.broken[self.execution_id])
        if self.state.status != "new":
            wanted = (msg.workflow.workflow_id, msg.workflow.version)
            if (self.state.workflow_id, self.state.workflow_version) != wanted:
                raise ExecutionIdInUse(
                    f"execution id {self.execution_id} already runs workflow "
                    f"{self.state.workflow_id}@{self.state.workflow_version}, "
                    f"not {msg.workflow.ref}"
                )
            return self.state  # a retried start: the first one is in the journal already
        self.graph = await self._s.graph(msg.workflow.workflow_id, msg.workflow.version)
        started = ExecutionStarted(
            at_ms=now_ms(self._s.clock),
            execution_id=self.execution_id,
            workflow_id=msg.workflow.workflow_id,
            workflow_version=msg.workflow.version,
            input=msg.input,
        )
        await self._turn(started)
        lifecycle.event(
            "execution_started", execution_id=self.execution_id, workflow=msg.workflow.ref
        )
        return self.state

    async def _sleep_if_idle(self) -> None:
        """Stop, the execution left on disk, unless messages wait or a timer came near."""
        now = now_ms(self._s.clock)
        if may_sleep(self.state, self.context.queued, now, self._s.passivate_after_ms):
            self._s.forget_pool_items(self.execution_id)
            await self.context.self_ref.stop()  # closes the mailbox now: nothing more comes

    def _let_go(self, exc: OwnershipLost) -> None:
        lifecycle.event(
            "execution_let_go", logging.WARNING, execution_id=self.execution_id, reason=str(exc)
        )

    async def _retire(self) -> None:
        """Stop this actor once the current message is handled (a request, not a wait)."""
        self._code.drop()
        if self._s.announced is not None:
            self._s.announced.release(self.execution_id)
        self._s.forget_pool_items(self.execution_id)
        await self.context.self_ref.stop()
