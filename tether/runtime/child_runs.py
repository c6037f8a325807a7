"""The runtime's side of code-first child workflows: start a child once its parent's turn is
durable, and tell the parent when the child ends (see tether.runtime.code_first.children).

Both run in tasks of the runtime, never in the parent's or the child's turn: starting a run
asks an actor, and a parent's actor must not wait on another actor inside its own turn.

Example (what the runtime wires up)::

    services.children = RuntimeChildRuns(runtime, task_group)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import anyio.abc

from tether.errors import ExecutionNotRunning, TetherError
from tether.persistence.contract import TERMINAL_STATUSES
from tether.runtime.code_first.children import CHILD_KEY, end_payload, parent_of
from tether.runtime.internals import runtime_internals
from tether.runtime.signals import SendEvent
from tether.runtime.state import ExecutionState

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime

logger = logging.getLogger("tether.execution")


class RuntimeChildRuns:
    """:class:`tether.runtime.code_first.children.ChildRuns` on a running Runtime."""

    def __init__(self, runtime: Runtime, task_group: anyio.abc.TaskGroup) -> None:
        self._rt = runtime
        self._tg = task_group

    def start(self, spec: dict[str, Any]) -> None:
        self._tg.start_soon(self._guarded, self._start(spec))

    def ensure(self, spec: dict[str, Any]) -> None:
        """After the parent's restart: start the child if it never was, tell the parent again
        if it has ended (the event is applied once)."""
        self._tg.start_soon(self._guarded, self._ensure(spec))

    def ended(self, child_root: str, state: ExecutionState) -> None:
        self._tg.start_soon(self._guarded, self._tell_parent(child_root, end_payload(state)))

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        # A storage failure here (the engine going down) must not take the runtime with it:
        # the parent's recovery derives the start or the news again (I3).
        try:
            await work
        except Exception:
            logger.warning("a child run's start or end was not delivered", exc_info=True)

    async def _start(self, spec: dict[str, Any]) -> None:
        cid = str(spec["execution_id"])
        try:
            await runtime_internals(self._rt).start_own(spec["workflow"], spec.get("input"), cid)
        except TetherError as exc:  # it cannot run here: the parent's body is told so
            error = f"{type(exc).__name__}: {exc}"
            await self._tell_parent(cid, {"status": "failed", "result": None, "error": error})

    async def _ensure(self, spec: dict[str, Any]) -> None:
        cid = str(spec["execution_id"])
        row = await self._rt.store.get_execution(cid)
        if row is None:
            await self._start(spec)
        elif row.status in TERMINAL_STATUSES:
            state = await self._rt.wait(await self._rt.current_segment(cid))
            await self._tell_parent(cid, end_payload(state))

    async def _tell_parent(self, child_root: str, payload: dict[str, Any]) -> None:
        parent = parent_of(child_root)
        if parent is None:
            return
        event = SendEvent(f"{CHILD_KEY}{child_root}", payload, f"tether.child-done:{child_root}")
        with contextlib.suppress(ExecutionNotRunning):  # the parent ended meanwhile
            try:
                await runtime_internals(self._rt).send_own_event(parent, event)
            except TetherError as exc:
                logger.warning("child %s could not tell its parent %s: %s", child_root, parent, exc)
