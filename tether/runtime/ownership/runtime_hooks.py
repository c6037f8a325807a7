"""How a ``Runtime`` plugs a :class:`SharedEngine` in (kept here so the facade stays small).

Example (what ``Runtime.__aenter__`` does)::

    rt._shared = await open_shared(rt, store)       # None unless the store is shared
    answered, result = await ask_or_forward(rt._shared, rt._passive, eid, message)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tether.actors import ActorRef, ActorStopped
from tether.persistence.contract import Store
from tether.persistence.ownership import OwnedElsewhere
from tether.runtime.ownership.inbox import is_signal
from tether.runtime.ownership.keeper import KeeperHooks
from tether.runtime.ownership.shared_engine import SharedEngine, ownership_of
from tether.runtime.passivation import Activations

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime


async def open_shared(rt: Runtime, store: Store) -> SharedEngine | None:
    """The runtime's SharedEngine when ``store`` was opened for one of several engines:
    registered, with the unowned and orphaned executions taken over (before recovery)."""
    ownership = ownership_of(store)
    if ownership is None:
        return None
    svc = rt._svc

    async def let_go(execution_id: str) -> None:
        # Drained, in a task of its own: a turn in progress (a step running) finishes and its
        # append is refused by fence like any late one; the renewals do not wait for it.
        ref = rt._system_ref(execution_id)
        if ref is not None and rt._tg is not None:
            rt._tg.start_soon(_stop, ref)

    def wake_remote_waiters() -> None:
        svc.wake_waiters_where(lambda eid: rt._system_ref(eid) is None)

    hooks = KeeperHooks(
        recover=rt._recover,
        let_go=let_go,
        ask=rt._passive.ask,
        wake_remote_waiters=wake_remote_waiters,
        tell_scheduler=svc.tell_scheduler,
    )
    shared = SharedEngine(ownership, rt.clock, hooks, rt._ownership_ttl_ms)
    await shared.keeper.open()
    return shared


async def _stop(ref: ActorRef) -> None:
    with contextlib.suppress(ActorStopped):
        await ref.stop(drain=True)


async def ask_or_forward(
    shared: SharedEngine, passive: Activations, execution_id: str, message: object
) -> tuple[bool, object]:
    """Ask the execution's actor here, or forward a signal to the engine that owns it."""
    if is_signal(message) and await shared.owned_elsewhere(execution_id):
        return await shared.forward(execution_id, message)  # type: ignore[arg-type]
    try:
        return await passive.ask(execution_id, message)
    except OwnedElsewhere:
        if not is_signal(message):
            raise
        return await shared.forward(execution_id, message)  # type: ignore[arg-type]
