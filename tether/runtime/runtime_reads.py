"""What the ``Runtime`` tells about executions: state, waiting for the end, the journal, the
index, and the executions it stopped as broken.

A mixin of :class:`~tether.runtime.runtime.Runtime` (kept apart so each module stays small);
live executions answer from their actor, finished ones from what the runtime kept or from
their journal.

Example::

    state = await rt.wait(run.id, timeout=30)
    for entry in await rt.journal(run.id):
        print(entry.seq, entry.record.type)
"""

from __future__ import annotations

import contextlib

import anyio

from tether.actors import ActorRef, ActorStopped
from tether.errors import ExecutionBroken, ExecutionNotFound
from tether.persistence import ExecutionRow
from tether.runtime.execution import GetState
from tether.runtime.records import JournalEntry, decode_rows
from tether.runtime.services import Services
from tether.runtime.snapshots import load_state
from tether.runtime.state import ExecutionState


class ExecutionReads:
    """Reads about executions; the Runtime provides the hooks below."""

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    def _system_ref(self, execution_id: str) -> ActorRef | None:
        raise NotImplementedError

    async def state(self, execution_id: str) -> ExecutionState:
        """The execution's state: the one held in memory, or rebuilt from the journal."""
        live = await self.live_state(execution_id)
        if live is not None:
            return live
        state, graph = await load_state(self._svc, execution_id)
        if graph is None:
            raise ExecutionNotFound(f"no execution {execution_id!r}")
        return state

    async def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionState:
        """Wait until the execution is terminal and return its final state."""
        # No cancel scope when there is no timeout: one per run is measurable at scale.
        with anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            while True:
                event = self._svc.acquire_waiter(execution_id)
                try:
                    state = await self._terminal_state(execution_id)
                    if state is not None and state.continued_as is not None:
                        execution_id = state.continued_as  # continued as a new segment
                        continue
                    if state is not None:
                        return state
                    await event.wait()
                finally:
                    self._svc.release_waiter(execution_id, event)

    async def _terminal_state(self, execution_id: str) -> ExecutionState | None:
        svc = self._svc
        if execution_id in svc.broken:
            raise ExecutionBroken(execution_id, svc.broken[execution_id])
        settled = svc.settled_state(execution_id)
        if settled is not None:
            return settled
        if self._system_ref(execution_id) is None:
            row = await self._require_row(execution_id)
            state = await self.state(row.execution_id)
            if state.is_terminal:
                return state
        return None

    async def live_state(self, execution_id: str) -> ExecutionState | None:
        """The state this runtime holds (the live actor's, the state it finished with, or a
        passivated execution's snapshot), never a replay; None when it holds none. What
        ``check_replay`` compares."""
        ref = self._system_ref(execution_id)
        if ref is not None:
            with contextlib.suppress(ActorStopped):
                state = await ref.ask(GetState(), timeout=None)
                assert isinstance(state, ExecutionState)
                return state
        return self._svc.settled_state(execution_id) or await self._passive_state(execution_id)

    async def _passive_state(self, execution_id: str) -> ExecutionState | None:
        """A passivated execution's state, from the snapshot its last turn wrote (no actor
        is spawned to answer, and nothing is replayed)."""
        loaded = (await self._svc.store.load_executions([execution_id])).get(execution_id)
        if loaded is None or not loaded.row.passivated:
            return None
        state, _ = await load_state(self._svc, execution_id, loaded)
        return state

    async def journal(self, execution_id: str, from_seq: int = 1) -> list[JournalEntry]:
        """The execution's records, decoded (raises on a corrupt row, never skips one)."""
        await self._require_row(execution_id)
        return decode_rows(await self._svc.store.read(execution_id, from_seq))

    async def get_execution(self, execution_id: str) -> ExecutionRow:
        return await self._require_row(execution_id)

    async def list_executions(
        self,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExecutionRow]:
        return await self._svc.store.list_executions(status, workflow_id, limit, offset)

    async def views_caught_up(self) -> None:
        """Wait until the run views (``store.page_executions``, ``store.count_executions``)
        hold every status change committed before the call: the projector's next pass, or
        nothing when it has taken them all already.

        Example::

            await rt.views_caught_up()
            counts = await rt.store.count_executions(ExecutionQuery())
        """
        await self._svc.views.catch_up()

    def broken(self) -> dict[str, str]:
        """Executions stopped because their journal cannot be replayed, with the reason."""
        return dict(self._svc.broken)

    async def _require_row(self, execution_id: str) -> ExecutionRow:
        row = await self._svc.store.get_execution(execution_id)
        if row is None:
            raise ExecutionNotFound(f"no execution {execution_id!r}")
        return row
