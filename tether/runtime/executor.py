"""The executor seam: how scheduled work nodes get run, and how their outcomes come back.

The scheduler hands a granted :class:`WorkItem` (keyed by the deterministic id
``execution/node/dispatch``, carrying its lease's fence) to a :class:`NodeExecutor` and later
receives a :class:`NodeOutcome`. :class:`InProcessExecutor` is the embedded runtime's worker
pool; ``tether worker`` processes are the other kind of worker, reached over ZeroMQ.

Example::

    executor = InProcessExecutor(ToolRegistry([add_one]), SystemClock(), max_concurrency=64)
    executor.bind(task_group, deliver)      # deliver(outcome) routes to the execution actor
    executor.submit(item)                   # idempotent by item.work_item_id
    executor.cancel(item.work_item_id)      # its outcome is not delivered

    if executor.claim(other):                # or run it in the caller's own task
        outcome = await executor.run_claimed(other)   # None: cancelled meanwhile
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.abc
import msgspec

from tether.clock import Clock
from tether.runtime.secrets import EnvSecrets, SecretSource
from tether.runtime.tool_outcome import ToolOutcome, run_tool
from tether.runtime.tools import ToolRegistry, UnknownTool
from tether.runtime.work_context import CURRENT_WORK_ITEM


class WorkItem(msgspec.Struct, frozen=True, gc=False):
    """One hand-out of a work node. ``dispatch`` makes the id unique across retries and loops."""

    work_item_id: str
    execution_id: str
    node_id: str
    attempt: int
    dispatch: int
    tool: str
    input: dict[str, Any] = {}
    timeout_secs: float | None = None
    #: The lease's fence (I5): the outcome is settled only while it is still current.
    fence: int = 0


class NodeOutcome(msgspec.Struct, frozen=True, gc=False):
    """What running a work item came to."""

    work_item_id: str
    execution_id: str
    node_id: str
    dispatch: int
    attempt: int
    ok: bool
    output: Any = None
    error: str = ""
    error_type: str = ""
    retryable: bool = True
    #: A tool that raised: where (bounded, ``tether.runtime.tracebacks``).
    traceback: str = ""
    duration_ms: int = 0
    fence: int = 0
    #: Set when a provider rate-limited the call: park this long, spending no attempt.
    retry_after_secs: float | None = None
    #: The scheduler waits for the execution's answer (a remote worker's report).
    reply: bool = False
    #: Who ran it (the lease owner; ``local`` for the in-process pool), for the logs.
    worker_id: str = "local"
    #: ``NodeFailed.cause``: set by the scheduler when it reclaimed the lease (never by a peer).
    cause: str = ""


def work_item_id(execution_id: str, node_id: str, dispatch: int) -> str:
    return f"{execution_id}/{node_id}/{dispatch}"


Deliver = Callable[[NodeOutcome], Awaitable[None]]


class NodeExecutor(Protocol):
    """Runs work items somewhere and reports their outcomes through ``deliver``."""

    def bind(self, task_group: anyio.abc.TaskGroup, deliver: Deliver) -> None:
        """Called once by the runtime before any submit."""
        ...

    def submit(self, item: WorkItem) -> bool:
        """Start ``item`` unless an item with the same id is already running (I3).

        True when it was started, False when it was already running.
        """
        ...

    def cancel(self, work_item_id: str) -> bool:
        """Stop the item if it is queued, waiting or running (then True); its outcome is not
        delivered. False when there is nothing to stop (unknown, or being reported)."""
        ...

    def holds(self, work_item_id: str) -> bool:
        """Is the item queued, running or being reported here (its outcome still to come)?"""
        ...

    async def aclose(self) -> None:
        """Cancel everything still running."""
        ...


class InProcessExecutor:
    """Runs ``@tool`` functions in this process on a pool of at most ``max_concurrency``
    worker tasks (started as demand grows, parked when idle).

    A pool rather than a task per item: spawning a task and its cancel scopes per step was the
    largest cost on the step path. Items arrive due: backoffs and parks wait in the
    scheduler, holding no worker.
    """

    def __init__(
        self,
        tools: ToolRegistry,
        clock: Clock,
        max_concurrency: int = 256,
        secrets: SecretSource | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._tools = tools
        #: Values of ``${secret:NAME}`` inputs: resolved in run_tool, never in a WorkItem.
        self._secrets = secrets if secrets is not None else EnvSecrets()
        self._clock = clock
        self._max = max_concurrency
        self._queue: deque[WorkItem] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._workers = 0
        self._known: set[str] = set()  # queued or running: submit is idempotent
        self._current: dict[str, asyncio.Task[Any]] = {}  # items whose tool is running
        self._interrupted: set[str] = set()  # cancelled while their tool ran
        self._claimed: set[str] = set()  # claimed to run in a caller's task, not started yet
        self._inline: set[str] = set()  # claimed items running in their caller's task
        self._tg: anyio.abc.TaskGroup | None = None
        self._deliver: Deliver | None = None

    def bind(self, task_group: anyio.abc.TaskGroup, deliver: Deliver) -> None:
        self._tg = task_group
        self._deliver = deliver

    def submit(self, item: WorkItem) -> bool:
        if self._tg is None:
            raise RuntimeError("executor used before bind()")
        if item.work_item_id in self._known:
            return False
        self._known.add(item.work_item_id)
        self._enqueue(item)
        return True

    def holds(self, work_item_id: str) -> bool:
        return work_item_id in self._known

    def cancel(self, work_item_id: str) -> bool:
        if work_item_id not in self._known:
            return False
        if work_item_id in self._claimed:  # its caller will find it gone and not run it
            self._claimed.discard(work_item_id)
            self._known.discard(work_item_id)
            return True
        before = len(self._queue)
        self._queue = deque(i for i in self._queue if i.work_item_id != work_item_id)
        if len(self._queue) != before:
            self._known.discard(work_item_id)
            return True
        task = self._current.get(work_item_id)
        if task is not None:
            self._interrupt(work_item_id, task)
            return True
        return False  # finished: its outcome is being delivered, nothing is left to stop

    def claim(self, work_item_id: str) -> bool:
        """Reserve an item to be run by :meth:`run_claimed` in the caller's own task (no
        worker task, no hop): held (``holds``) and cancellable from now on. False if an item
        with this id is already here."""
        if work_item_id in self._known:
            return False
        self._known.add(work_item_id)
        self._claimed.add(work_item_id)
        return True

    async def run_claimed(
        self, item: WorkItem, task: asyncio.Task[Any] | None = None
    ) -> NodeOutcome | None:
        """Run a claimed item in the current task, under the same timeout and outcome rules as
        the pool's (I11). None when it was cancelled, before it started or while it ran (the
        cancel interrupts the current task's wait inside the tool, and only that)."""
        wid = item.work_item_id
        if wid not in self._claimed:
            return None
        self._claimed.discard(wid)
        if task is None:  # the caller may pass its own (asyncio.current_task costs ~1 us)
            task = asyncio.current_task()
            assert task is not None
        self._inline.add(wid)
        try:
            outcome = await self._call(item, task)
        finally:
            self._inline.discard(wid)
            self._known.discard(wid)
        if outcome is None or wid in self._interrupted:
            self._interrupted.discard(wid)
            return None
        return _node_outcome(item, outcome)

    def stop_inline(self) -> None:
        """Interrupt the items running in their callers' tasks and drop the claims not yet
        run: their callers (execution actors) can then stop, as the pool's tasks are."""
        for wid in list(self._claimed):
            self.cancel(wid)
        for wid in list(self._inline):
            task = self._current.get(wid)
            if task is not None:
                self._interrupt(wid, task)

    async def aclose(self) -> None:
        self._queue.clear()
        self.stop_inline()
        for wid, task in list(self._current.items()):
            self._interrupt(wid, task)

    def _enqueue(self, item: WorkItem) -> None:
        self._queue.append(item)
        while self._idle:
            parked = self._idle.popleft()
            if not parked.done():
                parked.set_result(None)
                return
        if self._workers < self._max and self._tg is not None:
            self._workers += 1
            self._tg.start_soon(self._worker)

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                if not self._queue:
                    parked: asyncio.Future[None] = loop.create_future()
                    self._idle.append(parked)
                    await parked
                    continue
                await self._run_one(self._queue.popleft(), task)
        finally:
            self._workers -= 1

    def _interrupt(self, wid: str, task: asyncio.Task[Any]) -> None:
        # The worker is suspended inside this item's tool call (it is in _current only then),
        # so the cancellation lands there; _run_one tells it from an outside cancellation.
        if wid not in self._interrupted:
            self._interrupted.add(wid)
            task.cancel()

    async def _call(self, item: WorkItem, task: asyncio.Task[Any]) -> ToolOutcome | None:
        """The tool's outcome, or None when ``cancel`` interrupted it."""
        # Native task cancellation instead of an anyio cancel scope per item: the scope was a
        # measurable share of the step path. The timeout is run_tool's, the same as on a
        # fleet worker (I11).
        wid = item.work_item_id
        self._current[wid] = task
        seen = CURRENT_WORK_ITEM.set(item)  # for built-ins that key by it (durable memory)
        try:
            outcome = await run_tool(
                self._tools,
                item.tool,
                item.input,
                timeout_secs=item.timeout_secs,
                run_sync=anyio.to_thread.run_sync,
                monotonic=self._clock.monotonic,
                secrets=self._secrets,
            )
        except asyncio.CancelledError:
            if wid not in self._interrupted:
                raise  # the task itself is being cancelled (the pool, or the caller's)
            task.uncancel()
            if task.cancelling():
                raise
            return None
        finally:
            self._current.pop(wid, None)
            CURRENT_WORK_ITEM.reset(seen)
        if wid in self._interrupted:
            task.uncancel()  # the tool caught the interruption and returned: still cancelled
            return None
        return outcome

    def is_inline(self, tool_name: str) -> bool:
        """May this tool run in its caller's task (async, and not kept on the pool)?"""
        try:
            t = self._tools.resolve(tool_name)
        except UnknownTool:
            return False  # the pool reports it, as a fleet worker would
        return t.is_async and t.inline

    def release_claim(self, work_item_id: str) -> None:
        """Forget a claim that will not be run in the caller's task (submit it instead)."""
        if work_item_id in self._claimed:
            self._claimed.discard(work_item_id)
            self._known.discard(work_item_id)

    async def _run_one(self, item: WorkItem, task: asyncio.Task[Any]) -> None:
        wid = item.work_item_id
        outcome = await self._call(item, task)
        try:
            if wid in self._interrupted:
                self._interrupted.discard(wid)
                return  # cancelled with its execution: nobody waits for the outcome
            if outcome is not None and self._deliver is not None:
                await self._deliver(_node_outcome(item, outcome))
        finally:
            # Held until delivered (delivery waits while the actor's mailbox is full): an
            # execution actor restarted meanwhile must not reissue an item whose outcome is
            # on its way (it would run again, and the outcome be refused by fence). Once in
            # the mailbox, the execution's PoolItems says so (``tether.runtime.pool_items``).
            self._known.discard(wid)


def _node_outcome(item: WorkItem, out: ToolOutcome) -> NodeOutcome:
    return NodeOutcome(
        work_item_id=item.work_item_id,
        execution_id=item.execution_id,
        node_id=item.node_id,
        dispatch=item.dispatch,
        attempt=item.attempt,
        ok=out.ok,
        output=out.output,
        error=out.error,
        error_type=out.error_type,
        retryable=out.retryable,
        traceback=out.traceback,
        duration_ms=out.duration_ms,
        fence=item.fence,
        retry_after_secs=out.retry_after_secs,
    )
