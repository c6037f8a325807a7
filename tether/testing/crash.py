"""A crash harness: cut a run at a chosen journal position, recover, and report.

A cut at position ``k`` lets the turns that fit within the first ``k`` records commit; the
append that would go past it is where the process dies. From then on the first runtime is
dead as after a SIGKILL: no write of any kind reaches its store (nor is the answer to one in
flight heard), it starts no more work, and it is torn down by cancellation, without its
orderly shutdown. On SQLite (``url=``) its store is abandoned as a killed process leaves the
file (nothing queued is written, no checkpoint, the lock dropped) and a fresh store and
runtime open the same file to recover. Since turns are atomic
(I4), the positions that matter are turn boundaries; any ``k`` is accepted.

Both lives also watch journal-before-act (I1): every hand-out the pool starts must be a
``node_scheduled`` (execution, node, dispatch, attempt) whose turn the store had acknowledged
before the start; the report lists those that were not.

Example::

    total = await journal_length(wf, {"n": 0}, tools=[add_one])
    for cut in range(total + 1):
        report = await crash_and_recover(wf, {"n": 0}, tools=[add_one], cut=cut)
        assert report.state.status == "completed"
        assert report.reran_settled == []      # nothing committed ran again
        assert report.unjournaled == []        # nothing ran before its turn committed

    # The same on a SQLite file (a fresh one per call): the store itself is killed too.
    report = await crash_and_recover(
        wf, {"n": 0}, tools=[add_one], cut=3, url=f"sqlite:///{tmp_path / 'cut3.db'}"
    )
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import anyio.abc

from tether.clock import SystemClock
from tether.ir.types import Workflow
from tether.persistence import MemoryStore
from tether.persistence.contract import Store, Turn
from tether.persistence.urls import store_for_url
from tether.runtime.code_first.decorators import CodeWorkflow, steps_beside
from tether.runtime.executor import Deliver, InProcessExecutor, NodeExecutor, WorkItem
from tether.runtime.records import (
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    decode_record,
    decode_rows,
)
from tether.runtime.runtime import Runtime
from tether.runtime.state import ExecutionState
from tether.runtime.tools import Tool, ToolFn, ToolRegistry
from tether.testing.replay import check_replay

#: A cut no run reaches: the life it bounds ends only when the harness kills it.
NO_CUT = 1 << 62

#: (execution id, node id, dispatch, attempt) of one hand-out.
HandOut = tuple[str, str, int, int]


#: Every Store method that changes what is stored (a test holds this to the Store protocol):
#: a dead CutStore lets none of them through.
STORE_WRITES = frozenset(
    {
        "append",
        "put_workflow",
        "grant",
        "heartbeat",
        "release_leases",
        "reissue",
        "put_schedule",
        "delete_schedule",
        "set_schedule_paused",
        "advance_schedule",
        "set_schedule_error",
        "project_views",
    }
)


class SimulatedCrash(Exception):
    """Raised by a dead cut store for every write: the process 'died' before it."""


class CutStore:
    """A store that commits at most ``cut`` records, then is dead: every write of any kind
    (:data:`STORE_WRITES`) raises :class:`SimulatedCrash` without reaching the store, and a
    write in flight when it died raises too instead of answering (it may have landed, but
    the dead process never hears so). Reads go through: they change nothing.

    It also keeps the hand-outs whose ``node_scheduled`` it has acknowledged (``journaled``),
    so an executor can check that what it starts was committed first (I1).

    Every other method of the wrapped store goes through, so the harness keeps up with the
    Store contract as it grows; use :meth:`as_store` where a ``Store`` is expected.
    """

    def __init__(self, inner: Store, cut: int) -> None:
        self.inner = inner
        self.cut = cut
        #: Records durably appended (those of an append in flight at the crash included).
        self.committed = 0
        #: The same, by execution (a continued run's next segment is another execution).
        self.committed_by: Counter[str] = Counter()
        #: Set when the cut is reached (the process died mid-run).
        self.crashed = anyio.Event()
        self.dead = False
        self.journaled: set[HandOut] = set()

    def kill(self) -> None:
        """The process dies now (the cut does this too): no write reaches the store after."""
        self.dead = True

    async def learn_journal(self) -> None:
        """Count the hand-outs already in the store's journals as journaled (a second life,
        or a store given with history)."""
        offset = 0
        while rows := await self.inner.list_executions(limit=500, offset=offset):
            offset += len(rows)
            for row in rows:
                for entry in decode_rows(await self.inner.read(row.execution_id)):
                    self._learn(row.execution_id, entry.record)

    async def append(self, turn: Turn) -> int:
        self._alive()
        if self.committed + len(turn.records) > self.cut:
            self.crashed.set()
            self.kill()
            self._alive()
        seq = await self.inner.append(turn)
        self.committed += len(turn.records)  # durable, whether or not the caller hears it
        self.committed_by[turn.execution_id] += len(turn.records)
        self._alive()
        for new in turn.records:
            if new.type == "node_scheduled":
                self._learn(turn.execution_id, decode_record(new.type, new.payload))
        return seq

    async def close(self) -> None:
        pass  # the harness owns the inner store across both lives

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in STORE_WRITES:
            return attr

        @functools.wraps(attr)
        async def write(*args: Any, **kwargs: Any) -> Any:
            self._alive()
            result = await attr(*args, **kwargs)
            self._alive()  # died while it was in flight: the answer is never heard
            return result

        self.__dict__[name] = write  # found directly from now on
        return write

    def as_store(self) -> Store:
        return cast(Store, self)

    def _alive(self) -> None:
        if self.dead:
            raise SimulatedCrash(f"crash at journal position {self.committed}")

    def _learn(self, execution_id: str, record: object) -> None:
        if isinstance(record, NodeScheduled):
            self.journaled.add((execution_id, record.node_id, record.dispatch, record.attempt))


class CountingExecutor:
    """Wraps an executor and counts the work items it actually started, by id.

    With a ``witness`` it also lists hand-outs started before the witness store acknowledged
    their ``node_scheduled`` (``unjournaled``), and starts nothing once the witness is dead.
    """

    def __init__(self, inner: InProcessExecutor, witness: CutStore | None = None) -> None:
        self.inner = inner
        self.witness = witness
        self.started: Counter[str] = Counter()
        self.unjournaled: list[str] = []

    def bind(self, task_group: anyio.abc.TaskGroup, deliver: Deliver) -> None:
        self.inner.bind(task_group, deliver)

    def submit(self, item: WorkItem) -> bool:
        witness = self.witness
        if witness is not None and witness.dead:
            return True  # a dead process starts nothing; no outcome will come
        started = self.inner.submit(item)
        if started:
            self.started[item.work_item_id] += 1
            key = (item.execution_id, item.node_id, item.dispatch, item.attempt)
            if witness is not None and key not in witness.journaled:
                self.unjournaled.append(f"{item.work_item_id} attempt {item.attempt}")
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
    #: Hand-outs started (in either life) before their ``node_scheduled`` was committed (I1).
    unjournaled: list[str] = field(default_factory=list)
    #: Work items the first life started whose outcome it had not committed when it died.
    in_flight_at_crash: list[str] = field(default_factory=list)


RuntimeFactory = Callable[[Store, NodeExecutor], Runtime]


def _default_factory(
    tools: Iterable[Tool | ToolFn], bodies: Iterable[CodeWorkflow] = ()
) -> RuntimeFactory:
    tool_list, body_list = list(tools), list(bodies)
    return lambda store, executor: Runtime(
        store=store, tools=tool_list, executor=executor, workflows=body_list
    )


def _with_steps(
    workflow: Workflow | CodeWorkflow, tools: Iterable[Tool | ToolFn]
) -> tuple[list[Tool | ToolFn], list[CodeWorkflow]]:
    """The tools and code-first bodies a runtime of ``workflow`` needs (a body's steps)."""
    if isinstance(workflow, CodeWorkflow):
        return [*tools, *steps_beside(workflow)], [workflow]
    return list(tools), []


def _executor(tools: Iterable[Tool | ToolFn], witness: CutStore) -> CountingExecutor:
    return CountingExecutor(InProcessExecutor(ToolRegistry(tools), SystemClock()), witness)


async def journal_length(
    workflow: Workflow | CodeWorkflow,
    input: Mapping[str, Any],
    *,
    tools: Iterable[Tool | ToolFn],
    url: str | None = None,
) -> int:
    """Records an uncut run writes (the largest meaningful cut). ``url``: as for
    :func:`crash_and_recover` (a fresh database)."""
    report = await crash_and_recover(workflow, input, tools=tools, cut=NO_CUT, url=url)
    return len(report.entries)


async def crash_and_recover(
    workflow: Workflow | CodeWorkflow,
    input: Mapping[str, Any],
    *,
    tools: Iterable[Tool | ToolFn],
    cut: int,
    store: Store | None = None,
    execution_id: str = "exec_crash_harness",
    timeout: float = 30.0,
    url: str | None = None,
) -> CrashReport:
    """Run until ``cut`` records are committed, 'crash', recover, finish.

    The store is ``store`` (the same object in both lives), or a fresh store per life on the
    database ``url`` names (``sqlite:///...``: give each call a new file), the first one
    abandoned as a killed process leaves it; a MemoryStore by default. A SQLite store is
    opened with ``durability="normal"``, which survives a process crash (this one).
    """
    if store is not None and url is not None:
        raise ValueError("give a store or a url, not both")
    tool_list, bodies = _with_steps(workflow, tools)
    make = _default_factory(tool_list, bodies)
    inner = store or _new_store(url)
    await inner.open()
    cut_store = CutStore(inner, cut)
    await cut_store.learn_journal()
    first = _executor(tool_list, cut_store)
    with anyio.fail_after(timeout):
        life = make(cut_store.as_store(), first)
        await _first_life(life, cut_store, workflow, input, execution_id)
    if url is not None:
        await _abandon(inner)
        inner = _new_store(url)
        await inner.open()
    witness = CutStore(inner, NO_CUT)  # the second life is not cut: it only watches hand-outs
    await witness.learn_journal()
    second = _executor(tool_list, witness)
    async with make(witness.as_store(), second) as rt:
        with anyio.fail_after(timeout):
            if await inner.get_execution(execution_id) is None:
                await rt.start(workflow, input, execution_id=execution_id)
            state = await rt.wait(execution_id)
            if await rt.live_state(execution_id) is not None:  # it ran in this second life
                await check_replay(rt, execution_id)
            entries = await rt.journal(execution_id)
    if store is None:
        await inner.close()
    committed = cut_store.committed_by[execution_id]
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
        unjournaled=first.unjournaled + second.unjournaled,
        in_flight_at_crash=sorted(w for w in first.started if w not in settled_before),
    )


def _new_store(url: str | None) -> Store:
    return MemoryStore() if url is None else store_for_url(url, durability="normal")


async def _abandon(store: Store) -> None:
    """Leave a store as a killed process leaves it (SQLite: see ``SqliteStore.abandon``)."""
    abandon = getattr(store, "abandon", None)
    if abandon is not None:
        await abandon()
    else:
        await store.close()


async def _first_life(
    runtime: Runtime,
    store: CutStore,
    workflow: Workflow | CodeWorkflow,
    input: Mapping[str, Any],
    execution_id: str,
) -> None:
    """Run until the cut (or the end), then die: the store goes dead first, so nothing the
    runtime does while it is torn down reaches it, and the teardown is a cancellation, which
    stops the actors where they are instead of draining them."""
    with anyio.CancelScope() as kill:
        async with runtime as rt:
            await _run_until_crash(rt, store, workflow, input, execution_id)
            if not store.crashed.is_set():  # it finished in its first life: check it there
                await check_replay(rt, execution_id)
            store.kill()
            kill.cancel()


async def _run_until_crash(
    rt: Runtime,
    store: CutStore,
    workflow: Workflow | CodeWorkflow,
    input: Mapping[str, Any],
    execution_id: str,
) -> None:
    async with anyio.create_task_group() as tg:

        async def finish(waiter: Callable[[], Awaitable[Any]]) -> None:
            with contextlib.suppress(Exception):  # a run's failure is reported after recovery
                await waiter()
            tg.cancel_scope.cancel()

        async def run() -> None:
            await rt.start(workflow, input, execution_id=execution_id)
            await rt.wait(execution_id)

        tg.start_soon(finish, store.crashed.wait)
        tg.start_soon(finish, run)
