"""A crash harness: cut a run at a chosen journal position, recover, and report.

A cut at position ``k`` lets the turns that fit within the first ``k`` records commit and
refuses everything after, as if the process had died right there; then the runtime is torn
down and a fresh one recovers from the same store. Since turns are atomic (I4), the positions
that matter are turn boundaries; any ``k`` is accepted.

Example::

    total = await journal_length(wf, {"n": 0}, tools=[add_one])
    for cut in range(total + 1):
        report = await crash_and_recover(wf, {"n": 0}, tools=[add_one], cut=cut)
        assert report.state.status == "completed"
        assert report.reran_settled == []      # nothing committed ran again
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import anyio.abc

from tether.clock import SystemClock
from tether.ir.types import Workflow
from tether.persistence import MemoryStore
from tether.persistence.contract import Store, Turn, WorkItemRow
from tether.runtime.executor import Deliver, InProcessExecutor, NodeExecutor, WorkItem
from tether.runtime.records import JournalEntry, NodeCompleted, NodeFailed
from tether.runtime.runtime import Runtime
from tether.runtime.state import ExecutionState
from tether.runtime.tools import Tool, ToolFn, ToolRegistry
from tether.testing.replay import check_replay


class SimulatedCrash(Exception):
    """Raised by a cut store for every append past the cut: the process 'died' here."""


class CutStore:
    """A store that commits at most ``cut`` records, then refuses all appends.

    Everything but ``append`` and ``close`` goes to the wrapped store unchanged, so the
    harness keeps up with the Store contract as it grows; use :meth:`as_store` where a
    ``Store`` is expected.
    """

    def __init__(self, inner: Store, cut: int) -> None:
        self.inner = inner
        self.cut = cut
        self.committed = 0
        self.crashed = anyio.Event()

    async def append(self, turn: Turn) -> int:
        if self.crashed.is_set() or self.committed + len(turn.records) > self.cut:
            self.crashed.set()
            raise SimulatedCrash(f"crash at journal position {self.committed}")
        seq = await self.inner.append(turn)
        self.committed += len(turn.records)
        return seq

    async def reissue(self, rows: Sequence[WorkItemRow]) -> int:
        if self.crashed.is_set():  # a dead process writes nothing, rows included
            raise SimulatedCrash(f"crash at journal position {self.committed}")
        return await self.inner.reissue(rows)

    async def close(self) -> None:
        pass  # the harness owns the inner store across both lives

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def as_store(self) -> Store:
        return cast(Store, self)


class CountingExecutor:
    """Wraps an executor and counts the work items it actually started, by id."""

    def __init__(self, inner: InProcessExecutor) -> None:
        self.inner = inner
        self.started: Counter[str] = Counter()

    def bind(self, task_group: anyio.abc.TaskGroup, deliver: Deliver) -> None:
        self.inner.bind(task_group, deliver)

    def submit(self, item: WorkItem) -> bool:
        started = self.inner.submit(item)
        if started:
            self.started[item.work_item_id] += 1
        return started

    def cancel(self, work_item_id: str) -> bool:
        return self.inner.cancel(work_item_id)

    def holds(self, work_item_id: str) -> bool:
        return self.inner.holds(work_item_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class CrashReport:
    """What a cut-and-recover run came to."""

    cut: int
    committed_before_crash: int
    crashed: bool
    state: ExecutionState
    entries: list[JournalEntry]
    started_before: Counter[str] = field(default_factory=Counter)
    started_after: Counter[str] = field(default_factory=Counter)
    #: Work items whose outcome was committed before the crash yet were started again after.
    reran_settled: list[str] = field(default_factory=list)


RuntimeFactory = Callable[[Store, NodeExecutor], Runtime]


def _default_factory(tools: Iterable[Tool | ToolFn]) -> RuntimeFactory:
    tool_list = list(tools)
    return lambda store, executor: Runtime(store=store, tools=tool_list, executor=executor)


def _executor(tools: Iterable[Tool | ToolFn]) -> CountingExecutor:
    return CountingExecutor(InProcessExecutor(ToolRegistry(tools), SystemClock()))


async def journal_length(
    workflow: Workflow, input: Mapping[str, Any], *, tools: Iterable[Tool | ToolFn]
) -> int:
    """Records an uncut run writes (the largest meaningful cut)."""
    report = await crash_and_recover(workflow, input, tools=tools, cut=1 << 30)
    return len(report.entries)


async def crash_and_recover(
    workflow: Workflow,
    input: Mapping[str, Any],
    *,
    tools: Iterable[Tool | ToolFn],
    cut: int,
    store: Store | None = None,
    execution_id: str = "exec_crash_harness",
    timeout: float = 30.0,
) -> CrashReport:
    """Run until ``cut`` records are committed, 'crash', recover on the same store, finish."""
    tool_list = list(tools)
    make = _default_factory(tool_list)
    inner = store or MemoryStore()
    await inner.open()
    cut_store = CutStore(inner, cut)
    first = _executor(tool_list)
    async with make(cut_store.as_store(), first) as rt:
        with anyio.fail_after(timeout):
            await _run_until_crash(rt, cut_store, workflow, input, execution_id)
            if not cut_store.crashed.is_set():  # it finished in its first life: check it there
                await check_replay(rt, execution_id)
    committed = cut_store.committed
    second = _executor(tool_list)
    async with make(inner, second) as rt:
        with anyio.fail_after(timeout):
            if await inner.get_execution(execution_id) is None:
                await rt.start(workflow, input, execution_id=execution_id)
            state = await rt.wait(execution_id)
            if await rt.live_state(execution_id) is not None:  # it ran in this second life
                await check_replay(rt, execution_id)
            entries = await rt.journal(execution_id)
    if store is None:
        await inner.close()
    settled_before = {
        f"{execution_id}/{e.record.node_id}/{e.record.dispatch}"
        for e in entries[:committed]
        if isinstance(e.record, NodeCompleted | NodeFailed) and e.record.dispatch > 0
    }
    return CrashReport(
        cut=cut,
        committed_before_crash=committed,
        crashed=cut_store.crashed.is_set(),
        state=state,
        entries=entries,
        started_before=first.started,
        started_after=second.started,
        reran_settled=sorted(w for w in settled_before if second.started[w]),
    )


async def _run_until_crash(
    rt: Runtime, store: CutStore, workflow: Workflow, input: Mapping[str, Any], execution_id: str
) -> None:
    try:
        run = await rt.start(workflow, input, execution_id=execution_id)
    except SimulatedCrash:
        return
    async with anyio.create_task_group() as tg:

        async def finish(waiter: Callable[[], Awaitable[Any]]) -> None:
            with contextlib.suppress(Exception):  # a run's failure is reported after recovery
                await waiter()
            tg.cancel_scope.cancel()

        tg.start_soon(finish, store.crashed.wait)
        tg.start_soon(finish, lambda: rt.wait(run.id))
