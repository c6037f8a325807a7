"""``tether_runtime``: an embedded runtime for a test, which can be made to crash at a journal
position and recovers by itself, as a supervised service would.

Calls go to the live runtime of the moment. A call the crash interrupts is made again on the
recovered runtime once it is up (a client retrying against a restarted service): ``start``
with the same execution id (the harness names executions when the test does not, so the
retry starts nothing twice), ``send_event`` with the same event id, ``approve`` accepting
that the decision was already recorded.

Example::

    async with RuntimeUnderTest(TetherOptions(tools=[add_one]), tmp_path) as rt:
        await rt.begin(cut=3)                    # the store dies at its 4th record
        run = await rt.start(wf, {"n": 0})
        assert (await run.result())["n"] == 3    # recovered in a second life, finished there
        assert rt.crash is not None and rt.crash.position == 3
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc

from tether.clock import Clock
from tether.errors import ApprovalNotPending
from tether.ir.types import Workflow
from tether.persistence import MemoryStore
from tether.persistence.contract import Store
from tether.persistence.urls import store_for_url
from tether.runtime.code_first.decorators import CodeWorkflow, steps_beside
from tether.runtime.executor import work_item_id
from tether.runtime.records import JournalEntry, NodeCompleted, NodeFailed, decode_rows
from tether.runtime.run import Run
from tether.runtime.runtime import Runtime
from tether.runtime.state import ExecutionState
from tether.testing.crash import NO_CUT
from tether.testing.life import Committed, Life
from tether.testing.options import TetherOptions

T = TypeVar("T")


@dataclass
class CrashRecord:
    """What a crash left: where it cut, and what had settled or was running then."""

    position: int
    #: Work items (``execution/node/dispatch``) whose outcome was committed before the crash.
    settled_before: set[str] = field(default_factory=set)
    #: Work items the first life started and had not settled when it died (at-least-once).
    in_flight_at_crash: list[str] = field(default_factory=list)


class RuntimeUnderTest:
    """The runtime a test talks to, across the lives a crash makes. See the module docstring.

    The runtime of the moment is :attr:`runtime` (for anything not wrapped here); the lives so
    far are :attr:`lives`; :attr:`crash` says where the crash cut, if one happened.
    """

    def __init__(self, options: TetherOptions, directory: Path, clock: Clock | None = None):
        self.options = options
        self.directory = directory
        self.clock = clock
        self.lives: list[Life] = []
        self.crash: CrashRecord | None = None
        #: Every record committed so far, in commit order, across lives.
        self.committed: list[Committed] = []
        self._workflows: list[Workflow] = options.compiled_workflows()
        self._tg: anyio.abc.TaskGroup | None = None
        self._databases = itertools.count(1)
        self._url: str | None = None
        self._inner: Store | None = None
        self._changed = anyio.Event()
        self._failure: BaseException | None = None
        self._ids = itertools.count(1)
        #: Set by the crash-points loop, which runs the checks at each position itself.
        self.checked_by_crash_points = False

    async def __aenter__(self) -> RuntimeUnderTest:
        self._tg = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.end()
        finally:
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)

    # -- lives -------------------------------------------------------------------------------

    async def begin(self, cut: int = NO_CUT) -> None:
        """Start over on a fresh database, the first life to crash at ``cut`` records."""
        await self.end()
        self.crash, self.lives, self.committed = None, [], []
        self._ids = itertools.count(1)
        n = next(self._databases)
        self._url = None if self.options.storage == "memory" else (
            f"sqlite:///{self.directory / f'journal-{n}.db'}"
        )  # fmt: skip
        self._inner = self._new_store()
        await self._inner.open()
        await self._start_life(cut)

    async def end(self) -> None:
        """Close the live runtime in order and its database."""
        life = self.lives[-1] if self.lives else None
        if life is not None and not life.ended.is_set():
            await life.close()
        if self._inner is not None:
            inner, self._inner = self._inner, None
            await inner.close()

    @property
    def runtime(self) -> Runtime:
        """The runtime of the current life (after a crash: the recovered one, once it is up)."""
        if not self.lives:
            raise RuntimeError("tether_runtime has no live runtime: call begin() first")
        return self.lives[-1].runtime

    @property
    def records_written(self) -> int:
        """Records the first life committed: the positions a crash can cut at."""
        return self.lives[0].store.committed if self.lives else 0

    async def _start_life(self, cut: int) -> None:
        assert self._tg is not None and self._inner is not None
        life = Life(
            self._inner, cut=cut, number=len(self.lives) + 1, options=self.options,
            clock=self.clock, log=self.committed,
        )  # fmt: skip
        await life.store.learn_journal()  # hand-outs already journaled are known as such
        await self._tg.start(life.run)
        for wf in self._workflows:
            life.runtime.register(wf)
        self.lives.append(life)
        self._changed.set()
        self._changed = anyio.Event()
        self._tg.start_soon(self._recover_after, life)

    async def _recover_after(self, life: Life) -> None:
        """When ``life`` crashes, abandon its store as a killed process leaves it and start
        the next life on the same database (which recovers every unfinished run)."""
        await life.ended.wait()
        if not life.crashed:
            return
        try:
            assert self._inner is not None
            await _abandon(self._inner)
            self._inner = self._new_store()
            await self._inner.open()
            self.crash = await _crash_record(self._inner, life)
            await self._start_life(NO_CUT)
        except Exception as exc:  # the test's next call says so
            self._failure = exc
            self._changed.set()

    def _new_store(self) -> Store:
        if self._url is None:
            # A memory store outlives its runtime: the same object is the next life's.
            return self._inner if self._inner is not None else MemoryStore()
        return store_for_url(self._url, durability=self.options.durability)

    # -- calls that survive a crash ----------------------------------------------------------

    async def _on_live(self, call: Callable[[Runtime], Awaitable[T]]) -> T:
        """``call`` on the live runtime; made again on the next life when a crash cuts it."""
        while True:
            if self._failure is not None:
                raise self._failure
            life = self.lives[-1]
            attempt = _Attempt(call)
            async with anyio.create_task_group() as tg:
                tg.start_soon(attempt.run, life.runtime, tg.cancel_scope)
                tg.start_soon(_cancel_when, life.store.crashed, tg.cancel_scope)
            if attempt.outcome:
                return attempt.outcome[0]
            if not life.store.dead and attempt.error is not None:
                raise attempt.error
            await self._next_life_after(life)

    async def _next_life_after(self, life: Life) -> None:
        while self.lives[-1] is life and self._failure is None:
            await self._changed.wait()

    async def wait_for_next_life(self, life: Life) -> None:
        """Return once a life after ``life`` is up (raises what stopped recovery, if any)."""
        await self._next_life_after(life)
        if self._failure is not None:
            raise self._failure

    # -- the Runtime's API -------------------------------------------------------------------

    def register(self, workflow: Workflow | Mapping[str, Any] | CodeWorkflow) -> Workflow:
        """Register a workflow in this life (and every later one)."""
        if isinstance(workflow, CodeWorkflow):
            if workflow not in self.options.code_workflows():
                # Later lives are made with its body; this one runs it from now on.
                self.options = replace(self.options, workflows=(*self.options.workflows, workflow))
                for s in steps_beside(workflow):
                    self.lives[-1].executor_tools.add(s)
            return self.runtime.register(workflow)
        wf = self.runtime.register(workflow)
        self._workflows.append(wf)
        return wf

    def register_yaml(self, path: Path | str) -> Workflow:
        """Compile and register a YAML workflow (every later life registers it too)."""
        from tether.ir import compile_yaml_file

        return self.register(compile_yaml_file(Path(path)))

    async def start(
        self,
        workflow: Workflow | str | CodeWorkflow,
        input: Mapping[str, Any] | None = None,
        *,
        execution_id: str | None = None,
    ) -> Run:
        """``Runtime.start``; the run is named ``<workflow>-<n>`` unless the test names it."""
        if isinstance(workflow, CodeWorkflow):
            self.register(workflow)
        if execution_id is None:
            name = workflow if isinstance(workflow, str) else workflow.workflow_id
            execution_id = f"{name.partition('@')[0]}-{next(self._ids)}"
        await self._on_live(lambda rt: rt.start(workflow, input, execution_id=execution_id))
        # The handle asks this object, so result() follows the run into the next life.
        return Run(cast(Runtime, self), execution_id)

    async def run(self, workflow: Workflow | str, input: Mapping[str, Any] | None = None) -> Any:
        """Start and wait for the result."""
        return await (await self.start(workflow, input)).result()

    async def wait(self, execution_id: str, timeout: float | None = None) -> ExecutionState:
        with anyio.fail_after(timeout) if timeout is not None else _no_limit():
            return await self._on_live(lambda rt: rt.wait(execution_id))

    async def state(self, execution_id: str) -> ExecutionState:
        return await self._on_live(lambda rt: rt.state(execution_id))

    async def live_state(self, execution_id: str) -> ExecutionState | None:
        return await self._on_live(lambda rt: rt.live_state(execution_id))

    async def journal(self, execution_id: str, from_seq: int = 1) -> list[JournalEntry]:
        return await self._on_live(lambda rt: rt.journal(execution_id, from_seq))

    async def cancel(self, execution_id: str, reason: str = "") -> bool:
        return await self._on_live(lambda rt: rt.cancel(execution_id, reason))

    async def send_event(
        self, execution_id: str, key: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """``Runtime.send_event``; an event without an id gets one, so a retry applies once."""
        event_id = event_id or f"{execution_id}-{key}-{next(self._ids)}"
        return await self._on_live(
            lambda rt: rt.send_event(execution_id, key, payload, event_id=event_id)
        )

    async def approve(
        self, execution_id: str, decision: str, user_id: str, comment: str = "", **kw: Any
    ) -> ExecutionState | None:
        """``Runtime.approve``; None when a crash cut the call after the decision was
        recorded (the retry finds nothing pending)."""
        tries = 0

        async def once(rt: Runtime) -> ExecutionState | None:
            nonlocal tries
            tries += 1
            try:
                return await rt.approve(execution_id, decision, user_id, comment, **kw)
            except ApprovalNotPending:
                if tries == 1:
                    raise
                return None

        return await self._on_live(once)

    async def pending_approvals(self) -> list[Any]:
        return await self._on_live(lambda rt: rt.pending_approvals())

    async def list_executions(self, **kw: Any) -> list[Any]:
        return await self._on_live(lambda rt: rt.list_executions(**kw))


class _Attempt(Generic[T]):
    """One try of a call: its result or its error, cancelling the race when it is done."""

    def __init__(self, call: Callable[[Runtime], Awaitable[T]]) -> None:
        self.call = call
        self.outcome: list[T] = []
        self.error: Exception | None = None

    async def run(self, runtime: Runtime, race: anyio.CancelScope) -> None:
        try:
            self.outcome.append(await self.call(runtime))
        except Exception as exc:  # the caller decides: a crash's, or the call's own
            self.error = exc
        race.cancel()


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class _no_limit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _abandon(store: Store) -> None:
    """Leave a store as a killed process leaves it (SQLite: see ``SqliteStore.abandon``)."""
    abandon = getattr(store, "abandon", None)
    if abandon is not None:
        await abandon()


async def _crash_record(store: Store, life: Life) -> CrashRecord:
    settled: set[str] = set()
    offset = 0
    while rows := await store.list_executions(limit=500, offset=offset):
        offset += len(rows)
        for row in rows:
            for entry in decode_rows(await store.read(row.execution_id)):
                rec = entry.record
                if isinstance(rec, NodeCompleted | NodeFailed) and rec.dispatch > 0:
                    settled.add(work_item_id(row.execution_id, rec.node_id, rec.dispatch))
    started = life.executor.started
    return CrashRecord(
        position=life.store.cut,
        settled_before=settled,
        in_flight_at_crash=sorted(w for w in started if w not in settled),
    )
