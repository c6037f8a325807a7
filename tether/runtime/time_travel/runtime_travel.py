"""What the ``Runtime`` offers to go back in time: the state at each record, and forks.

A mixin of :class:`~tether.runtime.runtime.Runtime` (kept apart so each module stays small).
Reads fold the journal as it is committed, the live execution untouched; a fork writes one
turn (the new execution's first records, its index row and a snapshot) and then starts it
from its journal, as recovery would (see :mod:`tether.runtime.time_travel.fork`).

Example::

    steps = await rt.replay_states(run.id)
    fork = await rt.fork(run.id, at_seq=steps[2].seq)
    print(fork.execution_id, fork.runs_again, await rt.handle(fork.execution_id).result())
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.clock import Clock, now_ms
from tether.errors import ExecutionBroken, ExecutionIdInUse
from tether.logs import lifecycle_logger
from tether.persistence import ExecutionRow
from tether.persistence.contract import IndexUpdate, JournalCorruption, SequenceConflict, Turn
from tether.runtime.assembly import check_given_id
from tether.runtime.graph import Graph
from tether.runtime.ids import new_execution_id
from tether.runtime.records import (
    ExecutionStarted,
    JournalEntry,
    MalformedRecord,
    UnknownRecordType,
    decode_rows,
    normalized,
)
from tether.runtime.services import Services

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState
from tether.runtime.snapshots import encode_state
from tether.runtime.time_travel.fork import (
    ForkResult,
    fork_prefix,
    in_flight_report,
    record_at,
)
from tether.runtime.time_travel.states import ReplayStep, fold_steps

lifecycle = lifecycle_logger("tether.execution")
_UNREADABLE = (JournalCorruption, UnknownRecordType, MalformedRecord)


class ExecutionTimeTravel:
    """Replays and forks; the Runtime provides the hooks below."""

    clock: Clock
    _rng: random.Random

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    async def _require_row(self, execution_id: str) -> ExecutionRow:
        raise NotImplementedError

    if TYPE_CHECKING:  # ExecutionReads.state, earlier in Runtime's bases: never shadowed

        async def state(self, execution_id: str) -> ExecutionState: ...

    async def replay_states(self, execution_id: str) -> list[ReplayStep]:
        """Every record of the execution's journal with the state once it is folded.

        Example::

            for step in await rt.replay_states(run.id):
                print(step.seq, step.entry.type, step.state.data)
        """
        graph, entries = await self._journal_and_graph(execution_id)
        return list(fold_steps(graph, entries))

    async def state_at(
        self, execution_id: str, at_seq: int
    ) -> tuple[ReplayStep, ReplayStep | None]:
        """The record ``at_seq`` with the state once it is folded, and the step before it
        (None at the first record). Raises RecordNotFound naming the journal's range.

        Example::

            step, before = await rt.state_at(run.id, 5)
        """
        graph, entries = await self._journal_and_graph(execution_id)
        record_at(entries, execution_id, at_seq)
        steps = list(fold_steps(graph, entries[:at_seq]))
        return steps[-1], steps[-2] if len(steps) > 1 else None

    async def fork(
        self, execution_id: str, *, at_seq: int, fork_id: str | None = None
    ) -> ForkResult:
        """Start a new execution from the state at record ``at_seq`` of ``execution_id``.

        Steps whose outcome is in records 1..``at_seq`` do not run again; steps in flight at
        ``at_seq`` do (``runs_again``). Its first record names its origin. Returns once the
        new execution's first turn is durable; ``rt.handle(result.execution_id)`` follows
        it; ``fork_id`` names it (a fork retried with the same id and origin starts once).
        Raises ExecutionNotFound, RecordNotFound or ForkRefused before writing anything.

        Example::

            fork = await rt.fork(run.id, at_seq=4)
            print(await rt.handle(fork.execution_id).result())
        """
        graph, entries = await self._journal_and_graph(execution_id)
        if fork_id is not None:
            check_given_id(fork_id)
            return await self._write_fork(graph, entries, execution_id, at_seq, fork_id)
        for _ in range(3):
            try:
                return await self._write_fork(
                    graph, entries, execution_id, at_seq, new_execution_id(self.clock, self._rng)
                )
            except ExecutionIdInUse:
                continue  # the id exists already (a seeded rng and clock repeat themselves)
        raise ExecutionIdInUse("the id generator keeps repeating existing execution ids")

    async def fork_origin(self, execution_id: str) -> tuple[str, int] | None:
        """``(origin execution, record)`` when ``execution_id`` was forked, else None.

        Example::

            await rt.fork_origin(fork.execution_id)      # ("exec_01...", 4)
        """
        await self._require_row(execution_id)
        try:  # folded from its start: no read of a long journal for one field
            return (await self.state(execution_id)).forked_from
        except (ExecutionBroken, JournalCorruption):
            pass  # read its first record, which names the origin, as far as it can be read
        rows = await self._svc.store.read(execution_id, 1)
        if not rows:
            return None
        first = decode_rows(rows[:1])[0].record
        if isinstance(first, ExecutionStarted) and first.forked_from is not None:
            return first.forked_from, first.forked_at_seq or 0
        return None

    async def _write_fork(
        self,
        graph: Graph,
        entries: Sequence[JournalEntry],
        origin_id: str,
        at_seq: int,
        fork_id: str,
    ) -> ForkResult:
        svc = self._svc
        records, state = fork_prefix(
            graph, entries, at_seq=at_seq, fork_id=fork_id, origin_id=origin_id
        )
        runs_again, finished = in_flight_report(state, entries, at_seq)
        now = now_ms(self.clock)
        index = IndexUpdate(
            status=state.display_status, updated_at_ms=now, workflow_id=state.workflow_id,
            workflow_version=state.workflow_version, created_at_ms=now,
        )  # fmt: skip
        # A long prefix gets a snapshot: the fork's actor then starts without folding it all.
        every = svc.snapshot_every
        snapshot = encode_state(state) if every > 0 and len(records) >= every else None
        rows = tuple(normalized(r)[1] for r in records)
        try:
            await svc.append(Turn(fork_id, 1, rows, snapshot, index))
        except SequenceConflict:
            if await self.fork_origin(fork_id) == (origin_id, at_seq):
                return ForkResult(fork_id, origin_id, at_seq, state.display_status, runs_again,
                                  finished)  # fmt: skip
            raise ExecutionIdInUse(f"execution id {fork_id} is in use") from None
        lifecycle.event(
            "execution_forked", execution_id=fork_id, forked_from=origin_id, at_seq=at_seq,
            runs_again=list(runs_again) or None,
        )  # fmt: skip
        await svc.spawn_execution(fork_id)  # from its journal, as recovery starts a run
        return ForkResult(fork_id, origin_id, at_seq, state.display_status, runs_again, finished)

    async def _journal_and_graph(self, execution_id: str) -> tuple[Graph, list[JournalEntry]]:
        row = await self._require_row(execution_id)
        try:
            entries = decode_rows(await self._svc.store.read(execution_id, 1))
        except _UNREADABLE as exc:
            raise ExecutionBroken(execution_id, f"its journal cannot be read: {exc}") from None
        graph = await self._svc.graph(row.workflow_id, row.workflow_version)
        return graph, entries
