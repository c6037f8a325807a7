"""How the ``Runtime`` brings execution actors to life: one spawned for a start, for a
passivated execution woken, or from the journal when the runtime opens (recovery, a chunk
of journals read at a time), supervised, and what becomes of one that keeps failing
(started again once a full store writes again, else reported broken).

A mixin of :class:`~tether.runtime.runtime.Runtime`, kept apart so each module stays small;
an actor is spawned once per execution (or per wake-up), so none of this is on a step's path,
which only tells live actors (``Runtime._deliver``, ``Runtime._tell_execution``).

Example (what the runtime does)::

    await self._recover()                           # on opening: every unfinished execution
    ref = await self._ensure_spawned(execution_id)  # its live actor, from its journal if none
"""

from __future__ import annotations

import anyio.abc

from tether.actors import ActorRef, ActorSystem, RestartStrategy
from tether.persistence.contract import LoadedExecution
from tether.persistence.ownership import OwnershipLost
from tether.runtime.execution import ExecutionActor
from tether.runtime.ownership import SharedEngine
from tether.runtime.passivation import Activations
from tether.runtime.services import Services
from tether.runtime.storage_revival import StorageRevival

#: Unfinished executions whose journals recovery reads at once (bounds what it holds before
#: their actors take them).
_RECOVERY_CHUNK = 500


# An execution actor that keeps failing is restarted (each restart replays its journal) a few
# times, then stopped and reported; the others go on.
_EXECUTION_SUPERVISION = RestartStrategy(max_restarts=3, within_secs=60.0)


class ExecutionSpawning:
    """Execution actors of a Runtime, which provides what is below."""

    _system: ActorSystem | None
    _shared: SharedEngine | None
    _revival: StorageRevival | None
    _tg: anyio.abc.TaskGroup | None
    _started_in_recovery: set[str] | None

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    @property
    def _passive(self) -> Activations:
        raise NotImplementedError

    def _system_ref(self, execution_id: str) -> ActorRef | None:
        raise NotImplementedError

    async def _recover(self) -> None:
        """Resume every unfinished execution in the journal (oldest first), their journals
        read a chunk at a time: three reads per execution kept a restart waiting on them.
        Passivated ones stay on disk: only their earliest timers are armed, to wake them."""
        store = self._svc.store
        rows = await store.unfinished_executions()
        # Actors recovered from earlier chunks run while a chunk is read: one reaching its
        # continue-as-new boundary starts the next segment, which may be in a later chunk.
        # That one's bulk-read journal may be out of date (it may even have ended since).
        self._started_in_recovery = started = set[str]()
        try:
            for i in range(0, len(rows), _RECOVERY_CHUNK):
                chunk = [row.execution_id for row in rows[i : i + _RECOVERY_CHUNK]]
                loaded = await store.load_executions(chunk)
                for eid in chunk:
                    if self._system_ref(eid) is None:
                        await self._spawn(eid, loaded=None if eid in started else loaded.get(eid))
        finally:
            self._started_in_recovery = None
        await self._passive.arm_wakes(await store.passive_wakes())

    async def _ensure_spawned(self, execution_id: str) -> ActorRef:
        """The live actor of an execution, started from its journal if there is none."""
        return self._system_ref(execution_id) or await self._spawn(execution_id)

    async def _spawn(
        self, execution_id: str, fresh: bool = False, loaded: LoadedExecution | None = None
    ) -> ActorRef:
        assert self._system is not None
        services = self._svc
        if self._shared is not None and not fresh:  # another engine may act for it
            await self._shared.acquire(execution_id)
            live = self._system_ref(execution_id)  # a concurrent start spawned it meanwhile
            if live is not None:
                return live
        if self._started_in_recovery is not None and loaded is None:
            self._started_in_recovery.add(execution_id)
        # The first instance only gets what recovery read (a restarted one reads afresh),
        # and the actor's factory does not keep it alive.
        once = [loaded] if loaded is not None else []
        return await self._system.spawn(
            lambda: ExecutionActor(services, execution_id, fresh, once.pop() if once else None),
            name=execution_id,
            mailbox_size=64,
            strategy=_EXECUTION_SUPERVISION,
        )

    async def _spawn_passive(self, execution_id: str, loaded: LoadedExecution | None) -> ActorRef:
        return await self._spawn(execution_id, loaded=loaded)

    async def _on_escalation(self, ref: ActorRef, error: BaseException) -> None:
        if isinstance(error, OwnershipLost):  # another engine acts for it now
            return
        if self._revival is not None and self._tg is not None and self._revival.takes(error):
            # The journal could not be written (a full disk): not broken, started again from
            # its journal once the store writes again.
            self._tg.start_soon(self._revival.revive, ref.name, error)
            return
        self._svc.mark_broken(ref.name, f"its actor kept failing: {error!r}")
