"""ExecutionActor: one supervised actor per live execution, journal before act (I1).

Each message (start, node outcome, cancel) becomes a record; the actor plans the rest of the
turn from the resulting state, commits the turn in one transaction (I4) and only then acts:
hands scheduled work to the executor, answers waiters. Its state is the fold of its journal
(I2), so a restart — after a crash, or by its supervisor after a failure — rebuilds it by
replay and re-derives the effects (I3): work items are keyed by execution, node and dispatch.

Example (what the runtime does)::

    ref = await system.spawn(lambda: ExecutionActor(services, execution_id), name=execution_id)
    await ref.ask(StartExecution(workflow, {"n": 0}))
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from tether.actors import Actor
from tether.clock import now_ms
from tether.errors import ExecutionBroken, ExecutionIdInUse, WorkflowNotFound
from tether.ir.types import Workflow
from tether.persistence.contract import (
    IndexUpdate,
    JournalCorruption,
    NewRecord,
    SnapshotCorruption,
    Turn,
)
from tether.runtime.executor import NodeOutcome, WorkItem, work_item_id
from tether.runtime.graph import Graph
from tether.runtime.planner import PlanContext, plan_turn
from tether.runtime.records import (
    ExecutionCancelled,
    ExecutionStarted,
    MalformedRecord,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    Record,
    UnknownRecordType,
    decode_rows,
    private_copy,
)
from tether.runtime.services import Services
from tether.runtime.state import ExecutionState, NodeRun, replay
from tether.runtime.tools import UnknownTool
from tether.runtime.typed_state import type_problem


class StartExecution(msgspec.Struct, frozen=True):
    workflow: Workflow
    input: dict[str, Any]


class CancelExecution(msgspec.Struct, frozen=True):
    reason: str = ""


class GetState(msgspec.Struct, frozen=True):
    pass


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(ExecutionState)

BROKEN = (JournalCorruption, UnknownRecordType, MalformedRecord)
#: What a recovering execution cannot fix by restarting: report it at once, keep the journal.
_UNRECOVERABLE = (WorkflowNotFound, UnknownTool)

_log = logging.getLogger(__name__)


#: Bumped whenever ExecutionState changes shape: a snapshot of another shape is not decoded
#: into the wrong fields, it is skipped and the journal replayed from the start.
SNAPSHOT_FORMAT = b"\x01"


def encode_state(state: ExecutionState) -> bytes:
    return SNAPSHOT_FORMAT + _state_encoder.encode(state)


def decode_state(payload: bytes) -> ExecutionState:
    if payload[:1] != SNAPSHOT_FORMAT:
        raise msgspec.DecodeError(f"snapshot format {payload[:1]!r}, expected {SNAPSHOT_FORMAT!r}")
    return _state_decoder.decode(payload[1:])


async def load_state(services: Services, execution_id: str) -> tuple[ExecutionState, Graph | None]:
    """Latest snapshot plus the records after it, folded. Raises on a broken journal (I7)."""
    row = await services.store.get_execution(execution_id)
    if row is None:
        return ExecutionState(), None
    graph = await services.graph(row.workflow_id, row.workflow_version)
    start, from_seq = await _snapshot_or_none(services, execution_id)
    entries = decode_rows(await services.store.read(execution_id, from_seq))
    return replay(graph, (e.record for e in entries), start), graph


async def _snapshot_or_none(
    services: Services, execution_id: str
) -> tuple[ExecutionState | None, int]:
    """The latest snapshot and the first seq after it; a bad snapshot is only a lost shortcut:
    the journal is intact, so replay from the start (and say so in the log)."""
    try:
        snap = await services.store.latest_snapshot(execution_id)
        if snap is None:
            return None, 1
        return decode_state(snap.payload), snap.seq + 1
    except (SnapshotCorruption, msgspec.DecodeError) as exc:
        _log.warning(
            "execution %s: ignoring snapshot (%s); replaying from the start", execution_id, exc
        )
        return None, 1


class ExecutionActor(Actor):
    """Drives one execution. Its only durable effect is appending turns to the journal."""

    def __init__(self, services: Services, execution_id: str, fresh: bool = False) -> None:
        self._s = services
        self.execution_id = execution_id
        # A just-generated id has no journal yet: skip the read, unless this is a restart.
        self._fresh = fresh
        self.state = ExecutionState()
        self.graph: Graph | None = None

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

    async def _recover(self) -> None:
        self.state, self.graph = await load_state(self._s, self.execution_id)
        if self.graph is None or self.state.status == "new":
            return
        if self.state.is_terminal:
            self._s.settle(self.execution_id, self.state)
            await self._retire()
            return
        # The journal's hand-outs first; a turn re-deriving what a crash cut off before it was
        # decided then dispatches only what it schedules itself.
        for node_id, run in self.state.in_flight():
            self._dispatch(node_id, run)
        await self._turn(None)

    async def on_receive(self, message: object) -> object:
        if isinstance(message, NodeOutcome):
            await self._on_outcome(message)
            return None
        if isinstance(message, StartExecution):
            return await self._on_start_execution(message)
        if isinstance(message, CancelExecution):
            return await self._on_cancel(message)
        if isinstance(message, GetState):
            return self.state
        raise TypeError(f"ExecutionActor got an unknown message {type(message).__name__}")

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
        return self.state

    async def _on_outcome(self, out: NodeOutcome) -> None:
        run = self.state.nodes.get(out.node_id)
        if (
            self.graph is None
            or self.state.status != "running"
            or run is None
            or run.status != "scheduled"
            or run.dispatch != out.dispatch
        ):
            return  # late or duplicate: the journal already settled this hand-out
        record: Record
        at = now_ms(self._s.clock)
        problem = None
        if out.ok:
            key = self.graph.node(out.node_id).state_key
            problem = type_problem(self.graph.workflow.typed_schema(), key, out.output)
        if out.ok and problem is None:
            record = NodeCompleted(
                at_ms=at,
                node_id=out.node_id,
                dispatch=out.dispatch,
                attempt=out.attempt,
                output=out.output,
                duration_ms=out.duration_ms,
            )
        else:
            record = NodeFailed(
                at_ms=at,
                node_id=out.node_id,
                dispatch=out.dispatch,
                attempt=out.attempt,
                error=problem or out.error,
                error_type="TypeMismatch" if problem else out.error_type,
                retryable=False if problem else out.retryable,
                duration_ms=out.duration_ms,
            )
        await self._turn(record)

    async def _on_cancel(self, msg: CancelExecution) -> bool:
        if self.state.status != "running":
            return False
        await self._turn(ExecutionCancelled(at_ms=now_ms(self._s.clock), reason=msg.reason))
        return True

    async def _turn(self, incoming: Record | None) -> None:
        """Plan, commit, then act. Nothing is acted on unless its turn committed."""
        assert self.graph is not None
        before = self.state
        ctx = PlanContext(now_ms=now_ms(self._s.clock), rng=self._s.rng, bind=self._s.bind)
        after, records, rows = plan_turn(before, self.graph, incoming, ctx)
        if not records:
            return
        await self._s.store.append(self._make_turn(before, after, rows))
        self.state = after
        if after.is_terminal:
            self._s.executor.cancel(self.execution_id)
            self._s.settle(self.execution_id, after)
            await self._retire()
        else:
            self._act(after, records)

    def _make_turn(
        self, before: ExecutionState, after: ExecutionState, rows: list[NewRecord]
    ) -> Turn:
        every = self._s.snapshot_every
        snapshot = None
        if every > 0 and after.last_seq // every > before.last_seq // every:
            snapshot = encode_state(after)
        index = None
        if after.status != before.status:
            index = IndexUpdate(
                status=after.status,
                updated_at_ms=now_ms(self._s.clock),
                workflow_id=after.workflow_id,
                workflow_version=after.workflow_version,
                created_at_ms=after.started_at_ms,
                error=after.error,
            )
        return Turn(
            self.execution_id,
            before.last_seq + 1,
            tuple(rows),
            snapshot,
            index,
        )

    def _act(self, state: ExecutionState, records: list[Record]) -> None:
        """Hand the work this turn scheduled to the executor (after the turn committed)."""
        for record in records:
            if not isinstance(record, NodeScheduled):
                continue
            run = state.nodes.get(record.node_id)
            if run is not None and run.status == "scheduled" and run.dispatch == record.dispatch:
                self._dispatch(record.node_id, run)

    async def _retire(self) -> None:
        """Stop this actor once the current message is handled (a request, not a wait)."""
        await self.context.self_ref.stop()

    def _dispatch(self, node_id: str, run: NodeRun) -> None:
        assert self.graph is not None
        node = self.graph.node(node_id)
        timeout = node.node_timeout_secs or self.graph.workflow.timeouts.node_timeout
        self._s.executor.submit(
            WorkItem(
                work_item_id=work_item_id(self.execution_id, node_id, run.dispatch),
                execution_id=self.execution_id,
                node_id=node_id,
                attempt=run.attempt,
                dispatch=run.dispatch,
                tool=self._s.tool_name(node),
                input=private_copy(run.input),  # a tool that mutates its arguments touches no state
                not_before_ms=run.not_before_ms,
                timeout_secs=timeout,
            )
        )
