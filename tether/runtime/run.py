"""A handle on one execution (what ``Runtime.start`` returns).

Example::

    run = await rt.start(wf, input={"n": 0})
    print(run.id, await run.result(timeout=60))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.errors import ExecutionCancelledError, ExecutionFailedError
from tether.runtime.state import ExecutionState

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime


class Run:
    """A handle on one execution. Cheap: holds only the runtime and the id."""

    def __init__(self, runtime: Runtime, execution_id: str) -> None:
        self._rt = runtime
        self.id = execution_id

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the end; the final state (or the end node's ``output`` key).

        Raises ExecutionFailedError / ExecutionCancelledError / ExecutionBroken.
        """
        state = await self._rt.wait(self.id, timeout)
        if state.status == "completed":
            return state.result
        if state.status == "cancelled":
            raise ExecutionCancelledError(self.id, state.error or "")
        raise ExecutionFailedError(self.id, state.error or "unknown error")

    async def state(self) -> ExecutionState:
        return await self._rt.state(self.id)

    def __repr__(self) -> str:
        return f"Run({self.id!r})"
