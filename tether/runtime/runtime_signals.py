"""What the ``Runtime`` says to running executions: cancel, events, approvals, continue-as-new.

A mixin of :class:`~tether.runtime.runtime.Runtime` (kept apart so each module stays small):
every call reaches the live segment of the execution (following continue-as-new), asks its
actor (woken first if it was passivated), and returns once the signal is journaled, or raises
with the reason it was refused.

Example::

    await rt.send_event(run.id, "payment-cleared", {"amount": 50_000})
    await rt.approve(run.id, "approved", "alice@example.com", comment="ok")
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from tether.actors import ActorRef
from tether.errors import ExecutionBroken, ExecutionNotRunning, InvalidInput
from tether.persistence import ExecutionRow
from tether.persistence.pages import PagePosition
from tether.runtime.execution import CancelExecution
from tether.runtime.services import Services
from tether.runtime.signals import (
    ApprovalsPage,
    Approve,
    ContinueAsNew,
    PendingApproval,
    SendEvent,
    check_approve,
    check_event,
    current_segment,
    pending_approvals,
    pending_approvals_page,
)
from tether.runtime.state import ExecutionState


class ExecutionSignals:
    """Signals to executions; the Runtime provides the hooks below."""

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    def _system_ref(self, execution_id: str) -> ActorRef | None:
        raise NotImplementedError

    async def _require_row(self, execution_id: str) -> ExecutionRow:
        raise NotImplementedError

    async def live_state(self, execution_id: str) -> ExecutionState | None:
        raise NotImplementedError

    async def _ask_execution(self, execution_id: str, message: object) -> tuple[bool, object]:
        """Ask the execution's actor (woken if passivated): (False, None) when none took it."""
        raise NotImplementedError

    async def cancel(self, execution_id: str, reason: str = "") -> bool:
        """Cancel a running execution; False when it had already finished."""
        execution_id = await self.current_segment(execution_id)
        # A tool the execution runs in its own turn is stopped now, not when it returns.
        self._svc.interrupt_inline(execution_id)
        answered, cancelled = await self._ask_execution(execution_id, CancelExecution(reason))
        if not answered:
            await self._require_row(execution_id)
            if execution_id in self._svc.broken:
                raise ExecutionBroken(execution_id, self._svc.broken[execution_id])
            return False
        return bool(cancelled)

    async def send_event(
        self,
        execution_id: str,
        correlation_key: str,
        payload: Any = None,
        *,
        event_id: str | None = None,
    ) -> bool:
        """Deliver an external event; returns once it is journaled (True), or False when an
        event with this ``event_id`` was received before (it is applied once).

        An event that comes before the run reaches its wait node is kept and taken when it
        does. Raises ExecutionNotFound, ExecutionNotRunning (finished), InvalidInput (no wait
        node of the workflow waits for this key).

        Example::

            await rt.send_event(run.id, "payment-cleared", {"amount": 50_000})
        """
        msg = SendEvent(correlation_key, payload, event_id)
        check_event(msg)
        result = await self._signal(execution_id, msg)
        return result is not None

    async def approve(
        self,
        execution_id: str,
        decision: str,
        user_id: str,
        comment: str = "",
        *,
        state_patch: Mapping[str, Any] | None = None,
        node_id: str | None = None,
        roles: Collection[str] = (),
    ) -> ExecutionState:
        """Record a decision (``approved`` or ``rejected``) on the pending human approval and
        return the state after it; the run goes on from its turn.

        ``user_id`` and ``roles`` say who decides: the caller vouches for them (the HTTP API
        takes them from the authenticated token). The node's ``approvers`` list, when it has
        one, must name the user or one of the roles; ``state_patch`` may set only the node's
        ``patchable`` keys. A refused decision records nothing.

        Raises ApprovalNotPending (nothing pending, or decided already), AmbiguousApproval
        (several pending: give ``node_id``), ApproverNotAllowed (not in ``approvers``),
        ExecutionNotRunning, InvalidInput (a bad user id or comment, a key not patchable).

        Example::

            await rt.approve(run.id, "approved", "alice@example.com", comment="ok")
        """
        if state_patch is not None and not isinstance(state_patch, Mapping):
            raise InvalidInput(f"state_patch must be a mapping of state keys, got {state_patch!r}")
        if isinstance(roles, str) or not all(isinstance(r, str) for r in roles):
            raise InvalidInput(f"roles must be a collection of role names, got {roles!r}")
        msg = Approve(decision, user_id, comment, dict(state_patch or {}), node_id, tuple(roles))
        check_approve(msg)
        state = await self._signal(execution_id, msg)
        assert state is not None
        return state

    async def continue_as_new(self, execution_id: str, reason: str = "") -> None:
        """Roll the execution into a new segment (id ``<id>~2``, ``~3``, ...) seeded with its
        state, waits and pending events included, at the first point with no work node in
        flight; the journal of the old segment ends with ``segment_boundary``. ``wait``,
        ``result``, ``cancel``, ``send_event`` and ``approve`` on the old id follow it.

        Example::

            await rt.continue_as_new(run.id, reason="journal is long")
        """
        await self._signal(execution_id, ContinueAsNew(reason))

    async def current_segment(self, execution_id: str) -> str:
        """The id of the execution's live (or last) segment: itself unless it continued as new
        segments (see ``continue_as_new``)."""
        return await current_segment(
            self._svc.store, lambda eid: self._system_ref(eid) is not None, execution_id
        )

    async def pending_approvals(self) -> list[PendingApproval]:
        """Every decision a run of this journal waits for, oldest request first (all of
        them: for a page at a time, :meth:`pending_approvals_page`). Read from the run
        views once they hold every pause committed before the call."""
        await self._svc.views.catch_up()
        return await pending_approvals(self._svc.store, self.live_state)

    async def pending_approvals_page(
        self, after: PagePosition | None = None, runs: int = 100
    ) -> ApprovalsPage:
        """The decisions up to ``runs`` paused runs wait for (runs oldest first), starting
        after ``after``; ``page.next`` starts the next page (None after the last).

        Example::

            page = await rt.pending_approvals_page(runs=50)
            while page.next is not None:
                page = await rt.pending_approvals_page(page.next, runs=50)
        """
        if not isinstance(runs, int) or not 1 <= runs <= 1000:
            raise InvalidInput(f"runs must be 1-1000, got {runs!r}")
        await self._svc.views.catch_up()  # as pending_approvals: the pauses committed so far
        return await pending_approvals_page(self._svc.store, self.live_state, after, runs)

    async def _signal(
        self, execution_id: str, message: SendEvent | Approve | ContinueAsNew
    ) -> ExecutionState | None:
        execution_id = await self.current_segment(execution_id)
        answered, result = await self._ask_execution(execution_id, message)
        if not answered:
            row = await self._require_row(execution_id)
            if execution_id in self._svc.broken:
                raise ExecutionBroken(execution_id, self._svc.broken[execution_id])
            raise ExecutionNotRunning(execution_id, row.status)
        assert result is None or isinstance(result, ExecutionState)
        return result
